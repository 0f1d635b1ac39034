-- Events [$1, $2) of the batch: insert the repositories or find them,
-- with the first event's spelling; github_id is the last non-null one of
-- the range, filled in or corrected when an event knows it.
INSERT INTO repositories AS r (owner, name, github_id)
SELECT DISTINCT ON (lower(q.owner), lower(q.name)) q.owner, q.name, q.gid
  FROM (SELECT s.owner, s.name, s.ev,
               first_value(s.repo_gid) OVER (PARTITION BY lower(s.owner), lower(s.name)
                   ORDER BY s.repo_gid IS NULL, s.ev DESC) AS gid
          FROM pg_temp.pgw_stage s WHERE s.kind IN ('h', 's') AND s.ev >= $1::integer AND s.ev < $2::integer) q
 ORDER BY lower(q.owner), lower(q.name), q.ev
ON CONFLICT ((lower(owner)), (lower(name))) DO UPDATE
   SET github_id = EXCLUDED.github_id, updated_at = now()
 WHERE EXCLUDED.github_id IS NOT NULL
   AND r.github_id IS DISTINCT FROM EXCLUDED.github_id
