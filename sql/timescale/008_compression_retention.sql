-- 008: compression (DESIGN §7: segmentby instrument) with policies on the
-- big hypertables, and the ticks retention policy (configurable).
--
-- segmentby instrument, plus run_id: every view and runbook query filters
-- on both, and a replay's rows then never share a compressed segment with
-- live ones. orderby the time column, newest first (TimescaleDB's default
-- and the order "latest …" queries read). Compressed chunks still take the
-- sink's upserts (a redelivered record decompresses what it touches), so
-- compress_after only trades write cost on late rows against space.

ALTER TABLE ticks          SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE candles        SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'granularity, ts DESC');
ALTER TABLE features       SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'granularity, ts DESC');
ALTER TABLE orders         SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'ts DESC, cid, kind');
ALTER TABLE fills          SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'ts DESC, cid');
ALTER TABLE markouts       SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'fill_ts DESC, cid, horizon_ms');
ALTER TABLE gate_decisions SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE allocations    SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument, portfolio, run_id', timescaledb.compress_orderby = 'ts DESC, seq DESC');
-- No instrument column: one blob per evaluation holds every instrument (the JSON payload compresses well).
ALTER TABLE gates_blobs    SET (timescaledb.compress, timescaledb.compress_segmentby = 'run_id', timescaledb.compress_orderby = 'ts DESC');

-- Ticks are the bulk (about 70k rows a day here, millions on a real feed):
-- compressed after 2 days; the rest after 7, once late rows and replays of
-- the week are unlikely.
SELECT add_compression_policy('ticks',          compress_after => interval '2 days', if_not_exists => true);
SELECT add_compression_policy('candles',        compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('features',       compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('orders',         compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('fills',          compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('markouts',       compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('gate_decisions', compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('allocations',    compress_after => interval '7 days', if_not_exists => true);
SELECT add_compression_policy('gates_blobs',    compress_after => interval '7 days', if_not_exists => true);

-- candles_1m holds a row per M1 bar, as many as candles: compressed too,
-- later (30 days), as dashboards read its recent days. A refresh that lands
-- in a compressed chunk (a replay of an old day) still works, more slowly.
ALTER MATERIALIZED VIEW candles_1m SET (timescaledb.compress = true, timescaledb.compress_segmentby = 'instrument, run_id', timescaledb.compress_orderby = 'bucket DESC');
SELECT add_compression_policy('candles_1m', compress_after => interval '30 days', if_not_exists => true);

-- Ticks retention: raw ticks older than the interval are dropped (whole
-- chunks, by tick time, for every run). Nothing is aggregated from ticks, and
-- a replay re-imports them from the recorded files.
--
-- Configurable two ways (docs/timescale.md):
-- * at first migration: the setting sep.ticks_retention, e.g.
--   PGOPTIONS="-c sep.ticks_retention='14 days'" or
--   ALTER DATABASE … SET sep.ticks_retention = '14 days'; 'off' = keep ticks
--   forever; unset or empty = 30 days;
-- * any time later: SELECT set_ticks_retention('14 days') (NULL = keep forever).
CREATE OR REPLACE FUNCTION set_ticks_retention(p_drop_after interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  job integer;
BEGIN
  PERFORM remove_retention_policy('ticks', if_exists => true);
  IF p_drop_after IS NULL THEN
    RETURN NULL;
  END IF;
  IF p_drop_after < interval '1 day' THEN
    RAISE EXCEPTION 'ticks retention % is shorter than one chunk (1 day)', p_drop_after
      USING HINT = 'give an interval of at least 1 day, e.g. ''30 days'', or NULL to keep ticks forever';
  END IF;
  SELECT add_retention_policy('ticks', drop_after => p_drop_after) INTO job;
  RETURN job;
END
$$;

DO $$
DECLARE
  setting text := nullif(trim(current_setting('sep.ticks_retention', true)), '');
BEGIN
  IF lower(coalesce(setting, '')) = 'off' THEN
    PERFORM set_ticks_retention(NULL);
  ELSE
    BEGIN
      PERFORM set_ticks_retention(coalesce(setting, '30 days')::interval);
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
      RAISE EXCEPTION 'sep.ticks_retention = % is not an interval', quote_literal(setting)
        USING HINT = 'set it to an interval such as ''30 days'', or ''off'' to keep ticks forever';
    END;
  END IF;
END
$$;
