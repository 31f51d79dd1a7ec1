-- 005: the input topics md.ticks.v1, exec.orders.v1 and exec.fills.v1 as
-- hypertables (schemas/avro/tick.avsc, order-event.avsc, fill.avsc). Every
-- row carries run_id ('live' for the live pipeline); the primary key is the
-- sink's upsert key and includes the time column, as a hypertable requires.

-- Two ticks of one instrument in the same millisecond share a key: the one
-- written last stands, which is the quote the markout as-of join uses too
-- (docs/markout.md, "As of, inclusive"). The bundled day has 23 such pairs in
-- 210,972 ticks.
CREATE TABLE IF NOT EXISTS ticks (
  run_id     text             NOT NULL DEFAULT 'live',
  instrument text             NOT NULL,
  ts         timestamptz      NOT NULL,
  bid        double precision NOT NULL,
  ask        double precision NOT NULL,
  bid_size   double precision,
  ask_size   double precision,
  PRIMARY KEY (run_id, instrument, ts)
);
SELECT create_hypertable('ticks', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);

-- One row per lifecycle event: placed, then filled / cancelled / rejected.
CREATE TABLE IF NOT EXISTS orders (
  run_id     text             NOT NULL DEFAULT 'live',
  cid        text             NOT NULL,
  instrument text             NOT NULL,
  ts         timestamptz      NOT NULL,
  kind       text             NOT NULL CHECK (kind IN ('placed', 'filled', 'cancelled', 'rejected')),
  side       text             NOT NULL CHECK (side IN ('buy', 'sell')),
  price      double precision NOT NULL,
  qty        double precision NOT NULL,
  color      text             NOT NULL DEFAULT 'blue' CHECK (color IN ('blue', 'green')),
  PRIMARY KEY (run_id, instrument, cid, kind, ts)
);
SELECT create_hypertable('orders', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);
CREATE INDEX IF NOT EXISTS orders_instrument_ts_idx ON orders (run_id, instrument, ts DESC);

-- Partial fills of one order are separate rows (different ts).
CREATE TABLE IF NOT EXISTS fills (
  run_id     text             NOT NULL DEFAULT 'live',
  cid        text             NOT NULL,
  instrument text             NOT NULL,
  ts         timestamptz      NOT NULL,
  side       text             NOT NULL CHECK (side IN ('buy', 'sell')),
  price      double precision NOT NULL,
  qty        double precision NOT NULL,
  fee_bps    double precision NOT NULL DEFAULT 0,
  liquidity  text             NOT NULL CHECK (liquidity IN ('maker', 'taker')),
  color      text             NOT NULL DEFAULT 'blue' CHECK (color IN ('blue', 'green')),
  PRIMARY KEY (run_id, instrument, cid, ts)
);
SELECT create_hypertable('fills', 'ts', chunk_time_interval => interval '1 day', if_not_exists => true);
CREATE INDEX IF NOT EXISTS fills_instrument_ts_idx ON fills (run_id, instrument, ts DESC);
