-- The SQL of the sink's Postgres writer (sink/pg_writer.c and below),
-- embedded into backfill-sink at build time (sink/embed_migrations.cmake,
-- MODE=statements): each pgw_NAME.sql here is prepared once per session
-- as statement pgw_NAME; every other file is run as it is before them.
-- The tables are those of ../migrations/.
--
-- This file: the staging table. pg_temp.pgw_stage has one line per
-- pull_requests event ('h': its repository), per pull request ('p': with
-- its author) and per progress event ('s'), each tagged with ev (the
-- event's index in the batch) and pos (its place in the event). Whatever
-- Postgres might refuse (timestamps) stays text here, so COPY never fails
-- on an event's data: the casts happen in the statements, which take a
-- range of events [$1, $2) -- the whole batch, or one event under its own
-- savepoint when the database refused something in the batch.
--
-- A batch written at once ends as if its events were applied one by one,
-- in order (see each statement). Sorting by key keeps the lock order of
-- concurrent writers stable.
--
-- The column order is the order sink/pgw_events.c writes them in (COPY
-- text): change both together.
CREATE TEMP TABLE IF NOT EXISTS pgw_stage (
  kind "char" NOT NULL, ev integer NOT NULL, pos integer NOT NULL,
  owner text, name text, backfill_id text, repo_gid bigint,
  gid bigint, state text, number integer, title text, body text, draft boolean,
  merged boolean, created_at text, updated_at text, closed_at text, merged_at text,
  additions integer, deletions integer, changed_files integer, base_branch text,
  head_branch text, html_url text,
  author_gid bigint, username text, avatar_url text, is_bot boolean,
  status text, ev_status text, total integer, progress integer, cursor text,
  processed boolean, error text, metadata text, seq bigint, started_at text,
  chunk integer, chunk_size integer, requests bigint, points bigint
) ON COMMIT DELETE ROWS;
