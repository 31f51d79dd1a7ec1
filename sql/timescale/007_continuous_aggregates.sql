-- 007: continuous aggregates (DESIGN §7): candles stacked 1m → 1h → 1d,
-- hourly markouts by instrument/horizon/colour, daily allocation; their
-- refresh policies, and refresh_aggregates() to refresh them all in order.
--
-- All are real-time (materialized_only = false): a query sees the
-- materialized buckets plus the raw rows after the watermark.
--
-- Candle buckets. candles.ts is a bar's CLOSE time, so the M1 bar closing at
-- 01:00 covers 00:59–01:00 and belongs to the hour 00:00–01:00. Every level
-- therefore buckets with offset 1 minute: time_bucket('1 hour', ts, offset =>
-- '1 minute') puts closes 00:01 … 01:00 in one bucket, labelled 00:01 (its
-- first bar's close). Each level also carries the period explicitly:
-- period_start (00:00) and period_end (01:00; the candles table's ts
-- convention), spelt period_start + width: were period_end the bare
-- time_bucket expression on the 1m level, TimescaleDB would take it, not
-- bucket, as that level's time dimension. TimescaleDB requires one offset through a hierarchy,
-- hence the (identity) offset on the 1m level too.
--
-- The 1m level is over the candles table (which holds M1 bars, granularity
-- 'M1'), one row per bar: it is the base the hierarchy needs and adds the
-- bar count that the levels above sum (minutes with data = span integrity).
-- OHLCV: open = first(open) by time, close = last(close) by time, high = max,
-- low = min, volume = sum.

CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id,
       instrument,
       time_bucket(interval '1 minute', ts, "offset" => interval '1 minute') AS bucket,
       time_bucket(interval '1 minute', ts, "offset" => interval '1 minute') - interval '1 minute' AS period_start,
       time_bucket(interval '1 minute', ts, "offset" => interval '1 minute') - interval '1 minute' + interval '1 minute' AS period_end,
       first(open, ts)  AS open,
       max(high)        AS high,
       min(low)         AS low,
       last(close, ts)  AS close,
       sum(volume)      AS volume,
       count(*)         AS bars
FROM candles
WHERE granularity = 'M1'
GROUP BY run_id, instrument, time_bucket(interval '1 minute', ts, "offset" => interval '1 minute')
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id,
       instrument,
       time_bucket(interval '1 hour', bucket, "offset" => interval '1 minute') AS bucket,
       time_bucket(interval '1 hour', bucket, "offset" => interval '1 minute') - interval '1 minute' AS period_start,
       time_bucket(interval '1 hour', bucket, "offset" => interval '1 minute') - interval '1 minute' + interval '1 hour' AS period_end,
       first(open, bucket) AS open,
       max(high)           AS high,
       min(low)            AS low,
       last(close, bucket) AS close,
       sum(volume)         AS volume,
       sum(bars)::bigint   AS bars
FROM candles_1m
GROUP BY run_id, instrument, time_bucket(interval '1 hour', bucket, "offset" => interval '1 minute')
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id,
       instrument,
       time_bucket(interval '1 day', bucket, "offset" => interval '1 minute') AS bucket,
       time_bucket(interval '1 day', bucket, "offset" => interval '1 minute') - interval '1 minute' AS period_start,
       time_bucket(interval '1 day', bucket, "offset" => interval '1 minute') - interval '1 minute' + interval '1 day' AS period_end,
       first(open, bucket) AS open,
       max(high)           AS high,
       min(low)            AS low,
       last(close, bucket) AS close,
       sum(volume)         AS volume,
       sum(bars)::bigint   AS bars
FROM candles_1h
GROUP BY run_id, instrument, time_bucket(interval '1 day', bucket, "offset" => interval '1 minute')
WITH NO DATA;

-- Markouts in the fixed point of streams/markout/aggregate.ts (seed M1):
-- round(bps · 1e4) half away from zero, as JavaScript's Math.round on |bps·1e4|
-- does (PostgreSQL's round(float8) rounds half to even, so it is spelt out).
-- Integer sums are exact in any order, so SQL and the stream agree digit for digit.
CREATE OR REPLACE FUNCTION bps_to_int(bps double precision) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (sign(bps) * (trunc(abs(bps) * 1e4) + CASE WHEN abs(bps) * 1e4 - trunc(abs(bps) * 1e4) >= 0.5 THEN 1 ELSE 0 END))::bigint;

-- Hourly by fill time. avg_bps = sum_bps_int / markouts rounded half away from
-- zero to 6 decimals (aggregate.ts avgBps); up / down = markouts > 0 / < 0
-- (down at the 5 s horizon is the adverse fill count).
CREATE MATERIALIZED VIEW IF NOT EXISTS markout_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id,
       instrument,
       horizon_ms,
       color,
       time_bucket(interval '1 hour', fill_ts) AS bucket,
       count(*)                                                        AS markouts,
       sum(bps_to_int(markout_bps))                                    AS sum_bps_int,
       round(round(sum(bps_to_int(markout_bps)) * 100 / count(*)) / 1000000, 6) AS avg_bps,
       count(*) FILTER (WHERE markout_bps > 0)                         AS up,
       count(*) FILTER (WHERE markout_bps < 0)                         AS down,
       min(markout_bps)                                                AS min_bps,
       max(markout_bps)                                                AS max_bps
FROM markouts
GROUP BY run_id, instrument, horizon_ms, color, time_bucket(interval '1 hour', fill_ts)
WITH NO DATA;

-- Daily per portfolio and instrument. decisions = decisions that listed the
-- instrument (instrument '' counts the decisions without weights); avg_weight
-- is over those; last_weight is the weight at the day's last such decision
-- (by seq, which orders decisions even when two share a ts).
CREATE MATERIALIZED VIEW IF NOT EXISTS allocation_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id,
       portfolio,
       instrument,
       time_bucket(interval '1 day', ts) AS bucket,
       count(*)                                  AS decisions,
       count(*) FILTER (WHERE weight > 0)        AS selected,
       avg(weight)                               AS avg_weight,
       sum(weight)                               AS sum_weight,
       min(weight)                               AS min_weight,
       max(weight)                               AS max_weight,
       last(weight, seq)                         AS last_weight,
       min(seq)                                  AS first_seq,
       max(seq)                                  AS last_seq,
       count(*) FILTER (WHERE stale)             AS stale_decisions,
       count(*) FILTER (WHERE kill_switch)       AS kill_switch_decisions
FROM allocations
GROUP BY run_id, portfolio, instrument, time_bucket(interval '1 day', ts)
WITH NO DATA;

-- Refresh policies (run by TimescaleDB's job scheduler; the embedded PGlite
-- server has none: call refresh_aggregates() instead, docs/timescale.md).
-- start_offset NULL: a refresh covers all history, so rows a replay writes
-- for an old day are materialized too; only invalidated ranges are
-- recomputed, so a refresh with nothing new is cheap. end_offset one bucket:
-- the newest, still-filling bucket is left to real-time aggregation.
SELECT add_continuous_aggregate_policy('candles_1m', start_offset => NULL, end_offset => interval '1 minute', schedule_interval => interval '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('candles_1h', start_offset => NULL, end_offset => interval '1 hour', schedule_interval => interval '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('candles_1d', start_offset => NULL, end_offset => interval '1 day', schedule_interval => interval '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('markout_hourly', start_offset => NULL, end_offset => interval '1 hour', schedule_interval => interval '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('allocation_daily', start_offset => NULL, end_offset => interval '1 day', schedule_interval => interval '1 hour', if_not_exists => true);

-- Refreshes every continuous aggregate over [p_from, p_to) (NULL: unbounded),
-- lower levels first so each level reads a refreshed one. Each window is
-- widened to whole buckets plus one bucket before: TimescaleDB 2.23 refuses
-- the exact one-bucket window of the offset 1d level ("refresh window too
-- small"), and only invalidated buckets are recomputed, so the extra bucket
-- costs little. Run it outside a transaction (CALL refresh_aggregates();):
-- TimescaleDB refuses refresh_continuous_aggregate inside one. A replay calls
-- it for its range when it ends; on the embedded PGlite it replaces the
-- policies, which never run there.
CREATE OR REPLACE PROCEDURE refresh_aggregates(p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
  CALL refresh_continuous_aggregate('candles_1m',
    time_bucket(interval '1 minute', p_from, "offset" => interval '1 minute') - interval '1 minute',
    time_bucket(interval '1 minute', p_to, "offset" => interval '1 minute') + interval '1 minute');
  CALL refresh_continuous_aggregate('candles_1h',
    time_bucket(interval '1 hour', p_from, "offset" => interval '1 minute') - interval '1 hour',
    time_bucket(interval '1 hour', p_to, "offset" => interval '1 minute') + interval '1 hour');
  CALL refresh_continuous_aggregate('candles_1d',
    time_bucket(interval '1 day', p_from, "offset" => interval '1 minute') - interval '1 day',
    time_bucket(interval '1 day', p_to, "offset" => interval '1 minute') + interval '1 day');
  CALL refresh_continuous_aggregate('markout_hourly',
    time_bucket(interval '1 hour', p_from) - interval '1 hour',
    time_bucket(interval '1 hour', p_to) + interval '1 hour');
  CALL refresh_continuous_aggregate('allocation_daily',
    time_bucket(interval '1 day', p_from) - interval '1 day',
    time_bucket(interval '1 day', p_to) + interval '1 day');
END
$$;
