-- The free space of the disk that holds each app's queue (MiB, sampled once a minute): the
-- twentieth metric of `exam_contract::metrics::NAMES`, so a lab whose machines run out of
-- room for answers shows before an exam, not during one.
ALTER TABLE metric_minutes ADD COLUMN disk_free_mb_count INTEGER;
ALTER TABLE metric_minutes ADD COLUMN disk_free_mb_sum REAL;
ALTER TABLE metric_minutes ADD COLUMN disk_free_mb_min REAL;
ALTER TABLE metric_minutes ADD COLUMN disk_free_mb_max REAL;
