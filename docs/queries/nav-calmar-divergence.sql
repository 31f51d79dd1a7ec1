-- NAV proxy vs the selected instruments' Calmar, hourly; diverging = the 6-hour NAV change is
-- negative while the 6-hour mean Calmar of the selection is positive (operations reference).
SELECT hour, bars,
       round(nav::numeric, 6)                    AS nav,
       round((nav_change_6h * 1e4)::numeric, 2)  AS nav_change_6h_bps,
       round(calmar_selected_6h::numeric, 3)     AS calmar_6h,
       diverging
FROM nav_calmar_divergence
WHERE run_id = 'live' AND portfolio = 'main'
ORDER BY hour
LIMIT 24;
