-- 006: gate decisions (gates.v1), gate blobs (gates.blob.v1) and allocations
-- (alloc.weights.v1, long form) as hypertables; field names from
-- schemas/avro/gate.avsc, gates-blob.avsc and allocation.avsc.

CREATE TABLE IF NOT EXISTS gate_decisions (
  run_id             text             NOT NULL DEFAULT 'live',
  instrument         text             NOT NULL,
  ts                 timestamptz      NOT NULL,  -- evaluation time (stream time)
  eligible           boolean          NOT NULL,
  raw_pass           boolean          NOT NULL,
  trades             integer          NOT NULL,
  calmar             double precision NOT NULL,
  buf                double precision NOT NULL,
  repetition         integer          NOT NULL,
  hazard             double precision NOT NULL,
  span_ok            boolean          NOT NULL,
  session_open       boolean          NOT NULL,
  cooldown_until     timestamptz,
  consecutive_misses integer          NOT NULL DEFAULT 0,
  reasons            text[]           NOT NULL DEFAULT '{}',  -- why it fails, in rule order (docs/gates.md)
  PRIMARY KEY (run_id, instrument, ts)
);
SELECT create_hypertable('gate_decisions', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);

-- One row per blob. payload is the whole gates.blob.v1 record as JSON (maps
-- keyed by instrument, times in epoch ms as on the topic); the other columns
-- are derived from it for the runbook's checks ("at least three eligibles",
-- span integrity) without unpacking JSON.
CREATE TABLE IF NOT EXISTS gates_blobs (
  run_id         text        NOT NULL DEFAULT 'live',
  ts             timestamptz NOT NULL,
  instruments    integer     NOT NULL,                -- instruments in the blob
  eligible       text[]      NOT NULL DEFAULT '{}',  -- instruments whose gate is true, sorted
  eligible_count integer     NOT NULL,
  cooldowns      text[]      NOT NULL DEFAULT '{}',  -- instruments in cooldown at ts, sorted
  span_ok        boolean     NOT NULL,               -- every instrument's strict span holds (sep_span_integrity_ok)
  payload        jsonb       NOT NULL,
  PRIMARY KEY (run_id, ts)
);
SELECT create_hypertable('gates_blobs', 'ts', chunk_time_interval => interval '7 days', if_not_exists => true);

-- Long form: one row per instrument weight of one allocation decision; the
-- decision's fields (seq, total, stale, kill_switch, ...) repeat on each of
-- its rows. A decision without weights (nothing selected) still lands, as one
-- row with instrument '' and weight 0, so every seq is in the table and the
-- views can tell "dropped everything" from "no decision".
CREATE TABLE IF NOT EXISTS allocations (
  run_id        text             NOT NULL DEFAULT 'live',
  portfolio     text             NOT NULL,
  seq           bigint           NOT NULL,  -- rises by one per decision of the portfolio
  ts            timestamptz      NOT NULL,
  instrument    text             NOT NULL,  -- '' for a decision without weights
  weight        double precision NOT NULL,
  reasons       text[]           NOT NULL DEFAULT '{}',
  interval_sec  integer          NOT NULL,
  total         double precision NOT NULL,
  stale         boolean          NOT NULL,
  stale_age_sec double precision,
  kill_switch   boolean          NOT NULL,
  gates_ts      timestamptz,
  config_hash   text             NOT NULL,
  PRIMARY KEY (run_id, portfolio, seq, instrument, ts)
);
SELECT create_hypertable('allocations', 'ts', chunk_time_interval => interval '7 days', if_not_exists => true);
-- The as-of lookups of the views: latest decision at or before a time; an instrument's weights over time.
CREATE INDEX IF NOT EXISTS allocations_portfolio_ts_idx ON allocations (run_id, portfolio, ts DESC);
CREATE INDEX IF NOT EXISTS allocations_instrument_ts_idx ON allocations (run_id, instrument, ts DESC);
