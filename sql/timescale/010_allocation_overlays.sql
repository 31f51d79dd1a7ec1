-- 010: the allocation overlay (alloc.overlay.v1, `sep overlays`): per as-of
-- time and instrument, its HRP cluster, weight and scale, and the CVaR guard's
-- estimate and cap (docs/overlays.md). Long form like allocations.

CREATE TABLE IF NOT EXISTS allocation_overlays (
  run_id      text             NOT NULL DEFAULT 'live',
  ts          timestamptz      NOT NULL,  -- as-of: computed from the bars before it
  instrument  text             NOT NULL,
  range_from  timestamptz      NOT NULL,  -- first bar used
  timeframe   text             NOT NULL,
  cluster     text             NOT NULL,
  hrp_weight  double precision,           -- null: left out of HRP (dropped says why)
  scale       double precision NOT NULL,
  cvar        double precision,           -- null: too few returns (cvar_scope none)
  cvar_scope  text             NOT NULL CHECK (cvar_scope IN ('symbol', 'cluster', 'none')),
  max_weight  double precision,
  dropped     text,
  config_hash text             NOT NULL,
  PRIMARY KEY (run_id, instrument, ts)
);
SELECT create_hypertable('allocation_overlays', 'ts', chunk_time_interval => interval '30 days', if_not_exists => true);
