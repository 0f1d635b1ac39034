-- 001_init: the tables backfill-sink writes.
--
-- Applied by backfill-sink at startup (pgw_migrate), inside one
-- transaction that holds pg_advisory_xact_lock, and recorded in
-- schema_migrations. Every statement is idempotent on its own as well
-- (IF NOT EXISTS), so running this file by hand twice is harmless.
-- No BEGIN/COMMIT here: the caller owns the transaction.

-- One row per GitHub repository. owner/name keep the case the events
-- carry; identity is case-insensitive, as on GitHub.
CREATE TABLE IF NOT EXISTS repositories (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL CHECK (owner <> ''),
    name        text NOT NULL CHECK (name <> ''),
    github_id   bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS repositories_owner_name_key
    ON repositories (lower(owner), lower(name));
CREATE INDEX IF NOT EXISTS repositories_github_id_idx
    ON repositories (github_id);

-- Pull-request authors GitHub gave an id for. Authors without one (deleted
-- "ghost" users) are not stored; their PRs have author_id NULL.
CREATE TABLE IF NOT EXISTS contributors (
    id          bigserial PRIMARY KEY,
    github_id   bigint NOT NULL,
    username    text NOT NULL,
    avatar_url  text,
    is_bot      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contributors_github_id_key UNIQUE (github_id)
);
CREATE INDEX IF NOT EXISTS contributors_username_idx
    ON contributors (lower(username));

-- github_id is GitHub's fullDatabaseId (exact 64-bit). backfill_id is the
-- backfill (job event id) that last changed the row; inserted_at /
-- updated_in_db_at are our own clocks, created_at / updated_at GitHub's.
CREATE TABLE IF NOT EXISTS pull_requests (
    id                bigserial PRIMARY KEY,
    github_id         bigint NOT NULL,
    repository_id     bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number            integer NOT NULL CHECK (number > 0),
    title             text NOT NULL,
    body              text,
    state             text NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    author_id         bigint REFERENCES contributors (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    closed_at         timestamptz,
    merged_at         timestamptz,
    merged            boolean NOT NULL DEFAULT false,
    draft             boolean NOT NULL DEFAULT false,
    additions         integer CHECK (additions >= 0),
    deletions         integer CHECK (deletions >= 0),
    changed_files     integer CHECK (changed_files >= 0),
    base_branch       text,
    head_branch       text,
    html_url          text NOT NULL,
    backfill_id       text,
    inserted_at       timestamptz NOT NULL DEFAULT now(),
    updated_in_db_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pull_requests_github_id_key UNIQUE (github_id),
    CONSTRAINT pull_requests_repository_number_key UNIQUE (repository_id, number)
);
CREATE INDEX IF NOT EXISTS pull_requests_author_id_idx
    ON pull_requests (author_id);

-- One row per repository: the latest state of its latest backfill.
-- status is the reader-facing state; event_status keeps the event's own
-- word (started/processing/rate_limited/completed/failed). last_seq and
-- started_at decide which event is newer: a progress event with an older
-- or equal seq of the same backfill, or of an older backfill, is ignored.
CREATE TABLE IF NOT EXISTS progressive_backfill_state (
    id                     bigserial PRIMARY KEY,
    repository_id          bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    backfill_id            text NOT NULL,
    status                 text NOT NULL
                           CHECK (status IN ('active', 'paused', 'completed', 'failed')),
    event_status           text NOT NULL,
    total_prs              integer NOT NULL DEFAULT 0,
    processed_prs          integer NOT NULL DEFAULT 0,
    last_processed_cursor  text,
    last_processed_at      timestamptz,
    error                  text,
    metadata               jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_seq               bigint NOT NULL,
    started_at             timestamptz NOT NULL,
    finished_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT progressive_backfill_state_repository_id_key UNIQUE (repository_id)
);
CREATE INDEX IF NOT EXISTS progressive_backfill_state_status_idx
    ON progressive_backfill_state (status);

-- One row per processed chunk of a backfill. pr_count is the chunk's own
-- size; processed_prs, api_requests and api_points are the backfill's
-- cumulative figures after that chunk.
CREATE TABLE IF NOT EXISTS backfill_chunks (
    id             bigserial PRIMARY KEY,
    backfill_id    text NOT NULL,
    chunk_number   integer NOT NULL CHECK (chunk_number >= 1),
    repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    pr_count       integer,
    processed_prs  integer,
    cursor         text,
    api_requests   bigint,
    api_points     bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT backfill_chunks_backfill_chunk_key UNIQUE (backfill_id, chunk_number)
);
CREATE INDEX IF NOT EXISTS backfill_chunks_repository_id_idx
    ON backfill_chunks (repository_id);

-- The sink's consumed positions, written in the same transaction as the
-- rows they stand for: next_offset is the next message to read.
CREATE TABLE IF NOT EXISTS kafka_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL CHECK (partition >= 0),
    next_offset     bigint NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
