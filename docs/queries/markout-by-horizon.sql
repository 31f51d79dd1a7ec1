-- Markouts by horizon and colour over all instruments, exact from the fixed-point sums
-- (avg_bps to 6 decimals as streams/markout/aggregate.ts); adverse = share of markouts < 0.
SELECT horizon_ms, color,
       sum(markouts)                                                       AS markouts,
       round(round(sum(sum_bps_int) * 100 / sum(markouts)) / 1000000, 6)  AS avg_bps,
       round(sum(down)::numeric / sum(markouts), 4)                        AS adverse_rate
FROM markout_by_horizon
WHERE run_id = 'live'
GROUP BY horizon_ms, color
ORDER BY horizon_ms, color;
