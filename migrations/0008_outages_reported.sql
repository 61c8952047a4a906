-- Outages are reported to the server (event `network.outage`, for an attempt's timeline and
-- the proctor's fair-time decisions) once they end; this marks the ones already queued.
-- Those of earlier versions are history the server never asked for: not sent.
ALTER TABLE outages ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
UPDATE outages SET reported = 1;
CREATE INDEX outages_unreported ON outages (reported) WHERE reported = 0;
