-- 004: runs gain what a replay or canary run needs to be told apart and
-- followed (DESIGN §8): its lifecycle state and failure, the canary pairing,
-- the state it started from, the offsets it stops at and its configuration.
-- run_id stays the key every output row carries.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS status      text NOT NULL DEFAULT 'running';
ALTER TABLE runs ADD COLUMN IF NOT EXISTS error       text;         -- why a failed run failed
ALTER TABLE runs ADD COLUMN IF NOT EXISTS canary_id   text;         -- shared by the blue and the green run of one canary replay
ALTER TABLE runs ADD COLUMN IF NOT EXISTS color       text;         -- blue | green for canary runs, else null
ALTER TABLE runs ADD COLUMN IF NOT EXISTS snapshot    text;         -- state snapshot loaded at start; null = clean state
ALTER TABLE runs ADD COLUMN IF NOT EXISTS end_offsets jsonb;        -- {"topic": {"partition": next_offset}} the run stops at
ALTER TABLE runs ADD COLUMN IF NOT EXISTS config      jsonb;        -- resolved configuration; config_hash is its hash
ALTER TABLE runs ADD COLUMN IF NOT EXISTS updated_at  timestamptz NOT NULL DEFAULT now();  -- last progress or state change
-- Wall-clock duration of a finished run (null while it runs).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS elapsed interval GENERATED ALWAYS AS (finished_at - started_at) STORED;

ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('running', 'completed', 'failed', 'stopped'));
ALTER TABLE runs ADD CONSTRAINT runs_color_check CHECK (color IN ('blue', 'green'));
ALTER TABLE runs ADD CONSTRAINT runs_range_check CHECK (range_to IS NULL OR range_from IS NULL OR range_to >= range_from);

CREATE INDEX IF NOT EXISTS runs_kind_started_idx ON runs (kind, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_canary_idx ON runs (canary_id) WHERE canary_id IS NOT NULL;
