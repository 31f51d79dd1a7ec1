-- Canary: instruments and horizons where green does worse than blue, once both colours have
-- MARKOUT_MIN_SAMPLE (50) markouts.
SELECT instrument, horizon_ms, samples_blue, samples_green, avg_bps_blue, avg_bps_green, delta_bps
FROM markout_canary
WHERE run_id = 'live' AND min_sample >= 50
ORDER BY delta_bps, instrument, horizon_ms
LIMIT 10;
