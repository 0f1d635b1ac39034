-- Events [$1, $2): the pull requests. Per GitHub id the row with the
-- newest updatedAt wins, the later event on a tie (as "updatedAt >=
-- stored"). backfill_id is the backfill that last changed the row, so it
-- is not part of the "did anything change" test.
INSERT INTO pull_requests AS p
  (github_id, repository_id, number, title, body, state, author_id, created_at,
   updated_at, closed_at, merged_at, merged, draft, additions, deletions,
   changed_files, base_branch, head_branch, html_url, backfill_id)
SELECT DISTINCT ON (x.gid)
       x.gid, r.id, x.number, x.title, x.body, x.state, c.id, x.created_at::timestamptz,
       x.upd, x.closed_at::timestamptz, x.merged_at::timestamptz, x.merged, x.draft,
       x.additions, x.deletions, x.changed_files, x.base_branch, x.head_branch,
       x.html_url, x.backfill_id
  FROM (SELECT s.*, s.updated_at::timestamptz AS upd FROM pg_temp.pgw_stage s
         WHERE s.kind = 'p' AND s.ev >= $1::integer AND s.ev < $2::integer) x
  JOIN repositories r ON lower(r.owner) = lower(x.owner) AND lower(r.name) = lower(x.name)
  LEFT JOIN contributors c ON c.github_id = x.author_gid
 ORDER BY x.gid, x.upd DESC, x.ev DESC, x.pos DESC
ON CONFLICT (github_id) DO UPDATE SET
  repository_id = EXCLUDED.repository_id, number = EXCLUDED.number,
  title = EXCLUDED.title, body = EXCLUDED.body, state = EXCLUDED.state,
  author_id = EXCLUDED.author_id, created_at = EXCLUDED.created_at,
  updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at,
  merged_at = EXCLUDED.merged_at, merged = EXCLUDED.merged, draft = EXCLUDED.draft,
  additions = EXCLUDED.additions, deletions = EXCLUDED.deletions,
  changed_files = EXCLUDED.changed_files, base_branch = EXCLUDED.base_branch,
  head_branch = EXCLUDED.head_branch, html_url = EXCLUDED.html_url,
  backfill_id = EXCLUDED.backfill_id, updated_in_db_at = now()
WHERE p.updated_at <= EXCLUDED.updated_at
  AND (p.repository_id, p.number, p.title, p.body, p.state, p.author_id,
       p.created_at, p.updated_at, p.closed_at, p.merged_at, p.merged, p.draft,
       p.additions, p.deletions, p.changed_files, p.base_branch, p.head_branch,
       p.html_url)
      IS DISTINCT FROM
      (EXCLUDED.repository_id, EXCLUDED.number, EXCLUDED.title, EXCLUDED.body,
       EXCLUDED.state, EXCLUDED.author_id, EXCLUDED.created_at, EXCLUDED.updated_at,
       EXCLUDED.closed_at, EXCLUDED.merged_at, EXCLUDED.merged, EXCLUDED.draft,
       EXCLUDED.additions, EXCLUDED.deletions, EXCLUDED.changed_files,
       EXCLUDED.base_branch, EXCLUDED.head_branch, EXCLUDED.html_url)
