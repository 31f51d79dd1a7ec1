-- How the cost calibration of one instrument moved, hour by hour.
SELECT hour, updates, samples,
       round(spread_bps_ewma::numeric, 3)               AS spread_bps,
       round(slippage_bps_ewma::numeric, 3)             AS slippage_bps,
       round(slippage_change_bps::numeric, 3)           AS slippage_change,
       round(fill_rate_ewma::numeric, 3)                AS fill_rate,
       round(k_eff::numeric, 5)                         AS k_eff,
       round(cap_eff_bps::numeric, 3)                   AS cap_eff_bps
FROM cost_calibration_trend
WHERE run_id = 'live' AND instrument = 'EUR_USD'
ORDER BY hour
LIMIT 12;
