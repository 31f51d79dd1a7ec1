-- Eligible instruments per hour from the gates blobs: the runbook expects at least three during
-- active sessions, and span integrity (sep_span_integrity_ok) to hold.
SELECT time_bucket(interval '1 hour', ts) AS hour,
       count(*)                          AS blobs,
       min(eligible_count)               AS min_eligible,
       max(eligible_count)               AS max_eligible,
       bool_and(span_ok)                 AS span_ok,
       max(cardinality(cooldowns))       AS max_cooldowns
FROM gates_blobs
WHERE run_id = 'live'
GROUP BY hour
ORDER BY hour
LIMIT 24;
