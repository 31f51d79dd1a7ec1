-- Which instruments went ineligible in the run's last 24 hours of evaluations, for how long, and why?
-- (runbook: "Gates blob", "No positions while gates are green")
SELECT instrument, from_ts, until_ts, duration, evaluations, reasons
FROM eligibility_timeline
WHERE run_id = 'live'
  AND NOT eligible
  AND coalesce(until_ts, last_ts) > (SELECT max(ts) FROM gate_decisions WHERE run_id = 'live') - interval '24 hours'
ORDER BY duration DESC, instrument
LIMIT 10;
