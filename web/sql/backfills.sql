-- GET /api/backfills and /api/backfills/{owner}/{name}: every recorded
-- repository with the state of its latest backfill, as a JSON array the
-- server sends as is. $1: status filter ('' = any), $2: lower-cased
-- owner/name ('' = any), $3: 'history' to add each one's chunks.
--
-- status, in the words of the page: added (recorded, never queued),
-- queued (backfill-web wrote the row, no event yet), running,
-- rate_limited (waiting for retryAt), completed, failed, cancelled.
WITH x AS (
  SELECT r.owner || '/' || r.name AS repository,
         lower(r.owner || '/' || r.name) AS key,
         CASE WHEN s.id IS NULL THEN 'added'
              WHEN s.event_status = 'queued' THEN 'queued'
              WHEN s.status = 'completed' THEN 'completed'
              WHEN s.status = 'failed' AND s.error = 'cancelled' THEN 'cancelled'
              WHEN s.status = 'failed' THEN 'failed'
              WHEN s.event_status = 'rate_limited' THEN 'rate_limited'
              ELSE 'running' END AS status,
         s.event_status AS "eventStatus",
         coalesce(s.processed_prs, 0) AS processed,
         s.total_prs AS total,
         CASE WHEN s.status = 'completed' THEN 100.0
              ELSE coalesce(round(100.0 * s.processed_prs / nullif(s.total_prs, 0), 1), 0)
         END AS percentage,
         s.backfill_id AS "backfillId",
         s.last_seq AS seq,
         s.started_at AS "startedAt",
         s.updated_at AS "updatedAt",
         s.finished_at AS "finishedAt",
         s.error,
         CASE WHEN s.event_status = 'rate_limited' THEN s.metadata ->> 'retryAt' END
           AS "retryAt",
         (SELECT count(*) FROM backfill_chunks c WHERE c.backfill_id = s.backfill_id)
           AS chunks,
         CASE WHEN jsonb_typeof(s.metadata #> '{apiCost,requests}') = 'number'
              THEN (s.metadata #>> '{apiCost,requests}')::bigint END AS "apiRequests",
         CASE WHEN jsonb_typeof(s.metadata #> '{apiCost,points}') = 'number'
              THEN (s.metadata #>> '{apiCost,points}')::bigint END AS "apiPoints",
         CASE WHEN $3::text = 'history' THEN
           (SELECT coalesce(json_agg(json_build_object(
                     'chunk', c.chunk_number, 'prCount', c.pr_count,
                     'processed', c.processed_prs, 'apiRequests', c.api_requests,
                     'apiPoints', c.api_points, 'at', c.created_at)
                   ORDER BY c.chunk_number), '[]'::json)
              FROM backfill_chunks c WHERE c.backfill_id = s.backfill_id) END AS history
    FROM repositories r
    LEFT JOIN progressive_backfill_state s ON s.repository_id = r.id)
SELECT coalesce(jsonb_agg((to_jsonb(x) - 'key')
                          - CASE WHEN $3::text = 'history' THEN '' ELSE 'history' END
                          ORDER BY x.key), '[]'::jsonb)::text
  FROM x
 WHERE ($1::text = '' OR x.status = $1::text) AND ($2::text = '' OR x.key = $2::text)
