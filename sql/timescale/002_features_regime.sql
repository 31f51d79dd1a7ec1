-- 002: features gain the tick spread, the regime metrics and the direction
-- signal (features.v1 fields with defaults; docs/regime.md, docs/features.md).

ALTER TABLE features ADD COLUMN IF NOT EXISTS spread_bps double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS entropy    double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS coherence  double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS rupture    double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS stability  double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS hazard     double precision;
ALTER TABLE features ADD COLUMN IF NOT EXISTS repetition integer;
ALTER TABLE features ADD COLUMN IF NOT EXISTS signal     smallint NOT NULL DEFAULT 0;
