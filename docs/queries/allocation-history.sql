-- What did the allocator change, decision by decision (held weights left out)?
SELECT seq, ts, instrument, round(prev_weight::numeric, 4) AS prev_weight, round(weight::numeric, 4) AS weight,
       change, reasons, stale, kill_switch
FROM allocation_history
WHERE run_id = 'live' AND portfolio = 'main' AND change <> 'held'
ORDER BY seq, instrument
LIMIT 15;
