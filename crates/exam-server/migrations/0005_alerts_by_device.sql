-- A machine's alerts (the console's machine list and a machine's history, both by device
-- fingerprint), without reading every alert.
CREATE INDEX alerts_by_device ON alerts(device, id);
