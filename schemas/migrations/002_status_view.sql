-- 002_status_view: backfill_progress_summary, one row per repository with
-- the state of its latest backfill, in the words a person asks in:
-- how far, since when, what went wrong, how much API budget it took.
--
-- Applied by backfill-sink like every migration (one transaction, under
-- the migration lock). CREATE OR REPLACE keeps it idempotent; a later
-- migration may add columns at the end but must not rename or retype
-- these (Postgres refuses that for a replaced view).
--
-- percentage is processed / total, except that a completed backfill is
-- 100: total is the requested maximum (maxPRs), and a repository often has
-- fewer pull requests in the window than that.
-- chunks_done counts the backfill_chunks rows of the current backfill;
-- api_requests / api_points come from the latest progress event
-- (metadata.apiCost), cumulative for the backfill.
CREATE OR REPLACE VIEW backfill_progress_summary AS
SELECT r.owner || '/' || r.name                                  AS repository,
       s.status,
       s.event_status,
       s.processed_prs,
       s.total_prs,
       CASE WHEN s.status = 'completed' THEN 100.0
            ELSE round(100.0 * s.processed_prs / nullif(s.total_prs, 0), 1)
       END                                                       AS percentage,
       s.started_at,
       s.updated_at                                              AS last_update,
       s.finished_at,
       coalesce(s.finished_at, now()) - s.started_at             AS duration,
       s.error,
       (SELECT count(*) FROM backfill_chunks c
         WHERE c.backfill_id = s.backfill_id)                    AS chunks_done,
       CASE WHEN jsonb_typeof(s.metadata #> '{apiCost,requests}') = 'number'
            THEN (s.metadata #>> '{apiCost,requests}')::bigint END AS api_requests,
       CASE WHEN jsonb_typeof(s.metadata #> '{apiCost,points}') = 'number'
            THEN (s.metadata #>> '{apiCost,points}')::bigint END   AS api_points,
       CASE WHEN jsonb_typeof(s.metadata #> '{apiCost,remaining}') = 'number'
            THEN (s.metadata #>> '{apiCost,remaining}')::bigint END AS rate_limit_remaining,
       s.metadata ->> 'retryAt'                                  AS retry_at,
       s.backfill_id,
       s.repository_id
  FROM progressive_backfill_state s
  JOIN repositories r ON r.id = s.repository_id;
