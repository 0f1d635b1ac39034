-- Events [$1, $2), round $3 of the progress events: every repository's
-- $3-th, so the seq / startedAt rule sees one repository's events in
-- order. The state row only if the event is newer than the stored one; a
-- backfill_chunks row for a processing chunk. Answers how many events
-- later rounds have.
WITH q AS (
  SELECT s.*, row_number() OVER (PARTITION BY lower(s.owner), lower(s.name)
                                 ORDER BY s.ev) AS k
    FROM pg_temp.pgw_stage s WHERE s.kind = 's' AND s.ev >= $1::integer AND s.ev < $2::integer),
e AS (
  SELECT q.*, r.id AS rid FROM q
    JOIN repositories r ON lower(r.owner) = lower(q.owner) AND lower(r.name) = lower(q.name)
   WHERE q.k = $3::bigint),
st AS (
  INSERT INTO progressive_backfill_state AS t
    (repository_id, backfill_id, status, event_status, total_prs, processed_prs,
     last_processed_cursor, last_processed_at, error, metadata, last_seq, started_at,
     finished_at)
  SELECT e.rid, e.backfill_id, e.status, e.ev_status, e.total, e.progress, e.cursor,
         CASE WHEN e.processed THEN now() END, e.error, e.metadata::jsonb, e.seq,
         e.started_at::timestamptz,
         CASE WHEN e.status IN ('completed', 'failed') THEN now() END
    FROM e ORDER BY e.rid
  ON CONFLICT (repository_id) DO UPDATE SET
    backfill_id = EXCLUDED.backfill_id, status = EXCLUDED.status,
    event_status = EXCLUDED.event_status, total_prs = EXCLUDED.total_prs,
    processed_prs = EXCLUDED.processed_prs,
    last_processed_cursor = EXCLUDED.last_processed_cursor,
    last_processed_at = coalesce(EXCLUDED.last_processed_at,
        CASE WHEN t.backfill_id = EXCLUDED.backfill_id THEN t.last_processed_at END),
    error = EXCLUDED.error, metadata = EXCLUDED.metadata, last_seq = EXCLUDED.last_seq,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    updated_at = now()
  WHERE (t.backfill_id = EXCLUDED.backfill_id AND EXCLUDED.last_seq > t.last_seq)
     OR (t.backfill_id <> EXCLUDED.backfill_id AND EXCLUDED.started_at > t.started_at)),
ch AS (
  INSERT INTO backfill_chunks (backfill_id, chunk_number, repository_id, pr_count,
                               processed_prs, cursor, api_requests, api_points)
  SELECT e.backfill_id, e.chunk, e.rid, e.chunk_size, e.progress, e.cursor, e.requests,
         e.points
    FROM e WHERE e.ev_status = 'processing' AND e.chunk >= 1 ORDER BY e.ev
  ON CONFLICT (backfill_id, chunk_number) DO NOTHING)
SELECT count(*) FROM q WHERE q.k > $3::bigint
