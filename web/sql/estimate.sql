-- GET /api/estimate: what this deployment measured over its last 50
-- completed backfills of the past 7 days — the median time from queueing
-- to completion, and how many ran at once (the most backfills that
-- overlapped any one of them), so the page can say how long a list of N
-- repositories will take here.
WITH recent AS (
  SELECT started_at, finished_at,
         extract(epoch FROM finished_at - started_at) AS seconds
    FROM progressive_backfill_state
   WHERE status = 'completed' AND finished_at IS NOT NULL
     AND finished_at > now() - interval '7 days'
   ORDER BY finished_at DESC LIMIT 50),
overlap AS (
  SELECT (SELECT count(*) FROM recent b
           WHERE b.started_at <= a.started_at AND b.finished_at > a.started_at) AS n
    FROM recent a)
SELECT json_build_object(
         'samples', (SELECT count(*) FROM recent),
         'medianSeconds', (SELECT round(percentile_cont(0.5) WITHIN GROUP
                                        (ORDER BY seconds)::numeric, 1) FROM recent),
         'parallel', greatest(1, coalesce((SELECT max(n) FROM overlap), 1)))::text
