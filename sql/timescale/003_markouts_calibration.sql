-- 003: markouts (one row per fill and horizon) and cost calibrations (one row
-- per instrument and update), from markout.v1 and calib.cost.v1 (issue 6).

CREATE TABLE IF NOT EXISTS markouts (
  run_id      text             NOT NULL DEFAULT 'live',
  cid         text             NOT NULL,
  instrument  text             NOT NULL,
  fill_ts     timestamptz      NOT NULL,
  horizon_ms  integer          NOT NULL,
  side        text             NOT NULL CHECK (side IN ('buy', 'sell')),
  price       double precision NOT NULL,
  mid         double precision NOT NULL,
  mid_ts      timestamptz      NOT NULL,
  markout_bps double precision NOT NULL,
  color       text             NOT NULL DEFAULT 'blue' CHECK (color IN ('blue', 'green')),
  PRIMARY KEY (run_id, instrument, cid, horizon_ms, fill_ts)
);
SELECT create_hypertable('markouts', 'fill_ts', chunk_time_interval => interval '1 day', if_not_exists => true);

CREATE TABLE IF NOT EXISTS cost_calibrations (
  run_id             text             NOT NULL DEFAULT 'live',
  instrument         text             NOT NULL,
  ts                 timestamptz      NOT NULL,
  spread_bps_ewma    double precision,
  volume_usd_ewma    double precision,
  slippage_bps_ewma  double precision,
  fill_rate_ewma     double precision,
  turnover_usd_ewma  double precision,
  k_eff              double precision,
  cap_eff_bps        double precision,
  samples            bigint           NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, instrument, ts)
);
SELECT create_hypertable('cost_calibrations', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);
