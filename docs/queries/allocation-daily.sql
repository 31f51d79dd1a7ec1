-- Per day and instrument: how often the allocator listed it, its average and last weight.
SELECT bucket::date AS day, instrument, decisions, selected,
       round(avg_weight::numeric, 4) AS avg_weight, round(last_weight::numeric, 4) AS last_weight,
       stale_decisions, kill_switch_decisions
FROM allocation_daily
WHERE run_id = 'live' AND portfolio = 'main' AND instrument <> ''
ORDER BY day, avg_weight DESC
LIMIT 12;
