-- 009: views answering the runbooks' questions (DESIGN §7; seeds
-- operations-runbook.md, operations-reference.md, allocator-telemetry-log.md).
-- Every view keeps run_id as a column: filter on it (live is 'live'); the
-- window functions partition by it, so the filter is applied before them.
-- docs/timescale.md explains each one with a query that was run.

-- When was each instrument eligible? Consecutive gate decisions with the same
-- `eligible` form one interval. from_ts = its first evaluation, until_ts = the
-- first evaluation of the next interval (NULL while it lasts), last_ts = its
-- last evaluation. reasons = the reasons at the interval's first evaluation,
-- i.e. why the instrument became ineligible (empty for eligible intervals).
CREATE OR REPLACE VIEW eligibility_timeline AS
WITH marked AS (
  SELECT run_id, instrument, ts, eligible, reasons, cooldown_until, span_ok, session_open,
         CASE WHEN eligible IS DISTINCT FROM lag(eligible) OVER w THEN 1 ELSE 0 END AS starts
  FROM gate_decisions
  WINDOW w AS (PARTITION BY run_id, instrument ORDER BY ts)
), numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY run_id, instrument ORDER BY ts) AS interval_no
  FROM marked
), intervals AS (
  SELECT run_id, instrument, interval_no,
         bool_and(eligible)                         AS eligible,
         min(ts)                                    AS from_ts,
         max(ts)                                    AS last_ts,
         count(*)                                   AS evaluations,
         first(reasons, ts)                         AS reasons,
         max(cooldown_until)                        AS cooldown_until,
         count(*) FILTER (WHERE NOT span_ok)        AS span_breaks,
         count(*) FILTER (WHERE NOT session_open)   AS session_closed
  FROM numbered
  GROUP BY run_id, instrument, interval_no
)
SELECT run_id, instrument, eligible, from_ts,
       lead(from_ts) OVER (PARTITION BY run_id, instrument ORDER BY from_ts) AS until_ts,
       last_ts,
       coalesce(lead(from_ts) OVER (PARTITION BY run_id, instrument ORDER BY from_ts), last_ts) - from_ts AS duration,
       evaluations, reasons, cooldown_until, span_breaks, session_closed
FROM intervals;

-- What did the allocator change, decision by decision? One row per instrument
-- and decision, plus one 'exited' row (weight 0) for each instrument the
-- previous decision (seq − 1) held and this one does not list. change:
-- entered / exited / resized / held, or 'first' when seq − 1 is not in the
-- table (the run's first decision, or a gap left by topic compaction).
-- Filter change <> 'held' for the changes only.
CREATE OR REPLACE VIEW allocation_history AS
WITH decisions AS (
  SELECT DISTINCT ON (run_id, portfolio, seq)
         run_id, portfolio, seq, ts, total, stale, stale_age_sec, kill_switch, gates_ts, config_hash
  FROM allocations
  ORDER BY run_id, portfolio, seq, ts
), listed AS (
  SELECT a.run_id, a.portfolio, a.seq, a.ts, a.instrument, a.weight,
         CASE WHEN prev_decision.seq IS NULL THEN NULL ELSE coalesce(p.weight, 0) END AS prev_weight,
         a.reasons, a.total, a.stale, a.stale_age_sec, a.kill_switch, a.gates_ts, a.config_hash
  FROM allocations a
  LEFT JOIN allocations p
         ON p.run_id = a.run_id AND p.portfolio = a.portfolio AND p.seq = a.seq - 1 AND p.instrument = a.instrument
  LEFT JOIN decisions prev_decision
         ON prev_decision.run_id = a.run_id AND prev_decision.portfolio = a.portfolio AND prev_decision.seq = a.seq - 1
  WHERE a.instrument <> ''
), dropped AS (
  SELECT d.run_id, d.portfolio, d.seq, d.ts, p.instrument, 0::double precision AS weight, p.weight AS prev_weight,
         '{}'::text[] AS reasons, d.total, d.stale, d.stale_age_sec, d.kill_switch, d.gates_ts, d.config_hash
  FROM decisions d
  JOIN allocations p
    ON p.run_id = d.run_id AND p.portfolio = d.portfolio AND p.seq = d.seq - 1 AND p.instrument <> '' AND p.weight <> 0
  WHERE NOT EXISTS (
    SELECT 1 FROM allocations a
    WHERE a.run_id = d.run_id AND a.portfolio = d.portfolio AND a.seq = d.seq AND a.instrument = p.instrument)
)
SELECT run_id, portfolio, seq, ts, instrument, weight, prev_weight,
       weight - coalesce(prev_weight, 0) AS delta,
       CASE WHEN prev_weight IS NULL THEN 'first'
            WHEN prev_weight = 0 AND weight > 0 THEN 'entered'
            WHEN prev_weight > 0 AND weight = 0 THEN 'exited'
            WHEN weight <> prev_weight THEN 'resized'
            ELSE 'held' END AS change,
       reasons, total, stale, stale_age_sec, kill_switch, gates_ts, config_hash
FROM (SELECT * FROM listed UNION ALL SELECT * FROM dropped) h;

-- NAV proxy. No topic carries the account's NAV, so the portfolio's return is
-- derived the way the gates simulate one instrument (streams/gates/simulate.ts,
-- DESIGN §6.2), with the allocation's weight as the position size:
--
--   pos_i,t = w_i(t) · sign(signal_i,t)         w_i(t) = weight of i in the portfolio's
--                                               latest decision at or before bar close t
--                                               (0 when that decision does not list i)
--   r_i,t   = pos_i,t−1 · (C_i,t / C_i,t−1 − 1) − spread_bps_i,t / 2 / 1e4 · |pos_i,t − pos_i,t−1|
--   R_t     = Σ_i r_i,t                         (bars closing at t, features M1)
--   NAV_t   = Π_{s ≤ t} (1 + R_s)               (1 before the run's first bar)
--
-- i.e. the position is taken at a close and held to the next; half the bar's
-- spread is paid per unit of position changed; a missing spread is the last
-- known one (0 before any), as in simulate.ts. Gross of fees and of the real
-- fills' slippage (markouts and cost calibration show those). Assumes, as the
-- contract says, that seq rises with ts within a portfolio.
CREATE OR REPLACE VIEW nav_proxy AS
WITH bars AS (
  SELECT run_id, instrument, ts, close, sign(signal)::int AS dir, valid_spread,
         lag(close) OVER w AS prev_close,
         count(valid_spread) OVER w AS spread_run  -- a known spread and the bars after it without one
  FROM features
  -- simulate.ts validSpread: finite and ≥ 0 (NaN sorts above 'Infinity' in PostgreSQL)
  CROSS JOIN LATERAL (SELECT CASE WHEN spread_bps >= 0 AND spread_bps < 'Infinity' THEN spread_bps END AS valid_spread) v
  WHERE granularity = 'M1' AND close > 0 AND close < 'Infinity'
  WINDOW w AS (PARTITION BY run_id, instrument ORDER BY ts)
), spread_filled AS (
  SELECT run_id, instrument, ts, close, dir, prev_close,
         coalesce(first_value(valid_spread) OVER (PARTITION BY run_id, instrument, spread_run ORDER BY ts), 0) AS spread_bps
  FROM bars
), portfolios AS (
  SELECT DISTINCT run_id, portfolio FROM allocations
), events AS (
  -- Bars and decisions in one stream per portfolio; a decision sorts before a bar of the same ts.
  SELECT b.run_id, p.portfolio, b.instrument, b.ts, b.close, b.prev_close, b.dir, b.spread_bps, NULL::bigint AS seq
  FROM spread_filled b JOIN portfolios p ON p.run_id = b.run_id
  UNION ALL
  SELECT DISTINCT run_id, portfolio, NULL::text, ts, NULL::float8, NULL::float8, NULL::int, NULL::float8, seq FROM allocations
), as_of AS (
  SELECT *, max(seq) OVER (PARTITION BY run_id, portfolio ORDER BY ts, seq IS NULL ROWS UNBOUNDED PRECEDING) AS held_seq
  FROM events
), positions AS (
  SELECT e.run_id, e.portfolio, e.instrument, e.ts, e.close, e.prev_close, e.spread_bps,
         e.dir * coalesce(a.weight, 0) AS pos
  FROM as_of e
  -- A primary-key lookup per bar: the planner underestimates the bars here and
  -- would otherwise pick a join that compares every bar with every allocation.
  LEFT JOIN LATERAL (
    SELECT weight FROM allocations a
    WHERE a.run_id = e.run_id AND a.portfolio = e.portfolio AND a.seq = e.held_seq AND a.instrument = e.instrument
      AND a.ts <= e.ts
    LIMIT 1) a ON true
  WHERE e.seq IS NULL
), returns AS (
  SELECT *, coalesce(lag(pos) OVER (PARTITION BY run_id, portfolio, instrument ORDER BY ts), 0) AS prev_pos
  FROM positions
), per_bar AS (
  SELECT run_id, portfolio, ts,
         sum(prev_pos * coalesce(close / prev_close - 1, 0) - spread_bps / 2 / 1e4 * abs(pos - prev_pos)) AS bar_return,
         count(*) FILTER (WHERE pos <> 0) AS positions,
         sum(abs(pos))                    AS gross_exposure
  FROM returns
  GROUP BY run_id, portfolio, ts
)
SELECT run_id, portfolio, ts, bar_return, positions, gross_exposure,
       exp(sum(ln(1 + bar_return)) OVER (PARTITION BY run_id, portfolio ORDER BY ts)) AS nav
FROM per_bar;

-- NAV vs Calmar divergence, hourly (operations-reference.md: "investigate
-- exits/slippage if NAV declines while selected Calmar remains positive",
-- avg_over_time(sep_bt_calmar{instrument=selected}[6h]) > 0).
-- nav_return = the NAV proxy's change over the hour; calmar_selected = mean
-- gate Calmar of the instruments each decision of the hour selected (weight
-- > 0; each instrument's latest gate decision at or before the allocation);
-- the _6h columns cover the hour and the five before it. diverging =
-- nav_change_6h < 0 while calmar_selected_6h > 0. nav = NAV proxy at the
-- hour's last bar (1 before the run's first bar).
CREATE OR REPLACE VIEW nav_calmar_divergence AS
WITH nav_hours AS (
  SELECT run_id, portfolio, time_bucket(interval '1 hour', ts) AS hour,
         count(*) AS bars, sum(ln(1 + bar_return)) AS log_growth, last(nav, ts) AS nav
  FROM nav_proxy
  GROUP BY 1, 2, 3
), calmar_hours AS (
  SELECT a.run_id, a.portfolio, time_bucket(interval '1 hour', a.ts) AS hour,
         count(g.calmar) AS calmar_n, sum(g.calmar) AS calmar_sum
  FROM allocations a
  CROSS JOIN LATERAL (
    SELECT calmar FROM gate_decisions g
    WHERE g.run_id = a.run_id AND g.instrument = a.instrument AND g.ts <= a.ts
    ORDER BY g.ts DESC LIMIT 1) g
  WHERE a.weight > 0
  GROUP BY 1, 2, 3
), hours AS (
  SELECT coalesce(n.run_id, c.run_id) AS run_id, coalesce(n.portfolio, c.portfolio) AS portfolio,
         coalesce(n.hour, c.hour) AS hour, coalesce(n.bars, 0) AS bars, coalesce(n.log_growth, 0) AS log_growth,
         n.nav, coalesce(c.calmar_n, 0) AS calmar_n, coalesce(c.calmar_sum, 0) AS calmar_sum
  FROM nav_hours n FULL JOIN calmar_hours c USING (run_id, portfolio, hour)
), rolled AS (
  SELECT *,
         exp(sum(log_growth) OVER w6) - 1                       AS nav_change_6h,
         sum(calmar_sum) OVER w6 / nullif(sum(calmar_n) OVER w6, 0) AS calmar_selected_6h
  FROM hours
  WINDOW w6 AS (PARTITION BY run_id, portfolio ORDER BY hour RANGE BETWEEN interval '5 hours' PRECEDING AND CURRENT ROW)
)
SELECT run_id, portfolio, hour, bars, nav,
       exp(log_growth) - 1                    AS nav_return,
       nav_change_6h,
       calmar_sum / nullif(calmar_n, 0)       AS calmar_selected,
       calmar_selected_6h,
       coalesce(nav_change_6h < 0 AND calmar_selected_6h > 0, false) AS diverging
FROM rolled;

-- Markouts by horizon over the whole run, per instrument and colour: the
-- numbers of streams/markout/aggregate.ts (count, sum_bps_int, avg_bps to 6
-- decimals, up, down), from the hourly continuous aggregate. adverse_rate =
-- down / markouts (adverse_fill_rate at the 5 s horizon).
CREATE OR REPLACE VIEW markout_by_horizon AS
SELECT run_id, instrument, horizon_ms, color,
       sum(markouts)::bigint                                   AS markouts,
       sum(sum_bps_int)                                        AS sum_bps_int,
       round(round(sum(sum_bps_int) * 100 / sum(markouts)) / 1000000, 6) AS avg_bps,
       sum(up)::bigint                                         AS up,
       sum(down)::bigint                                       AS down,
       round(sum(down)::numeric / sum(markouts), 6)            AS adverse_rate,
       min(min_bps)                                            AS min_bps,
       max(max_bps)                                            AS max_bps,
       min(bucket)                                             AS first_hour,
       max(bucket)                                             AS last_hour
FROM markout_hourly
GROUP BY run_id, instrument, horizon_ms, color;

-- Canary: green − blue per instrument and horizon, exact from the integer
-- sums as aggregate.ts deltaBps; min_sample = the smaller colour's count, to
-- compare with MARKOUT_MIN_SAMPLE (50) before trusting delta_bps.
CREATE OR REPLACE VIEW markout_canary AS
SELECT run_id, instrument, horizon_ms,
       coalesce(b.markouts, 0) AS samples_blue,
       coalesce(g.markouts, 0) AS samples_green,
       b.avg_bps AS avg_bps_blue,
       g.avg_bps AS avg_bps_green,
       round(round((g.sum_bps_int * b.markouts - b.sum_bps_int * g.markouts) * 100 / (g.markouts * b.markouts)) / 1000000, 6) AS delta_bps,
       least(coalesce(b.markouts, 0), coalesce(g.markouts, 0)) AS min_sample
FROM (SELECT * FROM markout_by_horizon WHERE color = 'blue') b
FULL JOIN (SELECT * FROM markout_by_horizon WHERE color = 'green') g USING (run_id, instrument, horizon_ms);

-- Cost calibration trend, hourly per instrument: the calibration in force at
-- the hour's last update and its change from the previous hour with updates.
-- slippage_over_half_spread_bps: what fills paid beyond crossing half the
-- spread (slippage is measured from the mid, docs/calibration.md).
CREATE OR REPLACE VIEW cost_calibration_trend AS
WITH hours AS (
  SELECT run_id, instrument, time_bucket(interval '1 hour', ts) AS hour,
         count(*)                      AS updates,
         last(spread_bps_ewma, ts)     AS spread_bps_ewma,
         last(slippage_bps_ewma, ts)   AS slippage_bps_ewma,
         last(fill_rate_ewma, ts)      AS fill_rate_ewma,
         last(volume_usd_ewma, ts)     AS volume_usd_ewma,
         last(turnover_usd_ewma, ts)   AS turnover_usd_ewma,
         last(k_eff, ts)               AS k_eff,
         last(cap_eff_bps, ts)         AS cap_eff_bps,
         last(samples, ts)             AS samples
  FROM cost_calibrations
  GROUP BY 1, 2, 3
)
SELECT run_id, instrument, hour, updates, samples,
       spread_bps_ewma, slippage_bps_ewma, fill_rate_ewma, volume_usd_ewma, turnover_usd_ewma, k_eff, cap_eff_bps,
       slippage_bps_ewma - spread_bps_ewma / 2                          AS slippage_over_half_spread_bps,
       slippage_bps_ewma - lag(slippage_bps_ewma) OVER w                AS slippage_change_bps,
       k_eff - lag(k_eff) OVER w                                        AS k_eff_change,
       cap_eff_bps - lag(cap_eff_bps) OVER w                            AS cap_eff_change_bps,
       fill_rate_ewma - lag(fill_rate_ewma) OVER w                      AS fill_rate_change
FROM hours
WINDOW w AS (PARTITION BY run_id, instrument ORDER BY hour);
