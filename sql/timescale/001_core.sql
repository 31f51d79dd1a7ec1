-- 001: core tables for the first slice: runs, sink offsets, candles and features.
-- Every output row carries run_id ('live' for the live pipeline) so replays and
-- canaries never mix with live data (DESIGN §8).

CREATE TABLE IF NOT EXISTS runs (
  run_id       text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('live', 'replay', 'canary', 'demo')),
  config_hash  text,
  range_from   timestamptz,
  range_to     timestamptz,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  summary      jsonb
);

-- The sink's consumed offsets, written in the same transaction as its rows
-- (exactly-once into the database; the sink seeks here on start).
CREATE TABLE IF NOT EXISTS sink_offsets (
  consumer_group text   NOT NULL,
  topic          text   NOT NULL,
  partition      int    NOT NULL,
  next_offset    bigint NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE IF NOT EXISTS candles (
  run_id      text             NOT NULL DEFAULT 'live',
  instrument  text             NOT NULL,
  granularity text             NOT NULL DEFAULT 'M1',
  ts          timestamptz      NOT NULL,  -- bar close time
  open        double precision NOT NULL,
  high        double precision NOT NULL,
  low         double precision NOT NULL,
  close       double precision NOT NULL,
  volume      double precision NOT NULL,
  complete    boolean          NOT NULL DEFAULT true,
  PRIMARY KEY (run_id, instrument, granularity, ts)
);
SELECT create_hypertable('candles', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);

CREATE TABLE IF NOT EXISTS features (
  run_id      text             NOT NULL DEFAULT 'live',
  instrument  text             NOT NULL,
  granularity text             NOT NULL DEFAULT 'M1',
  ts          timestamptz      NOT NULL,
  bar_index   bigint           NOT NULL,
  close       double precision NOT NULL,
  log_return  double precision,
  ewma_vol    double precision,
  true_range  double precision,
  atr14       double precision,
  volume_usd  double precision NOT NULL,
  PRIMARY KEY (run_id, instrument, granularity, ts)
);
SELECT create_hypertable('features', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);
