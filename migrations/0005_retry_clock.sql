-- When a retry was scheduled, on this computer's clock. An entry whose schedule lies in the
-- clock's future was scheduled before the clock was set back: it is due now, instead of
-- waiting as long as the clock jumped (rows without it count from their creation).
ALTER TABLE queue ADD COLUMN scheduled_at INTEGER;
