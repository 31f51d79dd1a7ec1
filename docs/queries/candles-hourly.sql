-- Hourly bars of one instrument from the stacked aggregates (period_end = close time, as candles.ts);
-- bars = minutes with a candle, 60 for a complete hour.
SELECT period_start, period_end, open, high, low, close, volume, bars
FROM candles_1h
WHERE run_id = 'live' AND instrument = 'NZD_USD' AND period_start >= '2026-11-13T12:00Z'
ORDER BY period_start
LIMIT 6;
