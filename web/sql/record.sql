-- POST /api/bulk-add: records the repositories of a bulk add. $1: JSON
-- array of {owner, name, backfillId, startedAt (ms), total}; backfillId is
-- null for a repository recorded without a backfill. A queued one gets a
-- 'queued' state row — unless the sink already wrote this backfill's
-- first events, or a newer backfill is there — so that a reload shows it
-- before any worker took it. The sink's seq / startedAt rule then lets
-- the backfill's first event (seq 1) replace it.
WITH input AS (
  SELECT e.owner, e.name, e."backfillId" AS backfill_id, e."startedAt" AS started_ms, e.total
    FROM json_to_recordset($1::json)
         AS e(owner text, name text, "backfillId" text, "startedAt" bigint, total integer)),
ins AS (
  INSERT INTO repositories (owner, name)
  SELECT owner, name FROM input ORDER BY lower(owner), lower(name)
  ON CONFLICT ((lower(owner)), (lower(name))) DO NOTHING),
q AS (
  SELECT r.id AS rid, i.*
    FROM input i
    JOIN repositories r ON lower(r.owner) = lower(i.owner) AND lower(r.name) = lower(i.name)
   WHERE i.backfill_id IS NOT NULL)
INSERT INTO progressive_backfill_state AS t
  (repository_id, backfill_id, status, event_status, total_prs, processed_prs, last_seq,
   started_at)
SELECT q.rid, q.backfill_id, 'active', 'queued', q.total, 0, 0,
       to_timestamp(q.started_ms / 1000.0)
  FROM q ORDER BY q.rid
ON CONFLICT (repository_id) DO UPDATE SET
  backfill_id = EXCLUDED.backfill_id, status = EXCLUDED.status,
  event_status = EXCLUDED.event_status, total_prs = EXCLUDED.total_prs,
  processed_prs = 0, last_processed_cursor = NULL, last_processed_at = NULL, error = NULL,
  metadata = '{}'::jsonb, last_seq = 0, started_at = EXCLUDED.started_at, finished_at = NULL,
  updated_at = now()
WHERE t.backfill_id <> EXCLUDED.backfill_id AND EXCLUDED.started_at > t.started_at
