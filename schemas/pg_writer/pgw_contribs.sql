-- Events [$1, $2): the authors GitHub gave an id for, one row each. The
-- last row of an author wins; its avatar is the last non-null one (a
-- missing avatar does not erase one).
INSERT INTO contributors AS c (github_id, username, avatar_url, is_bot)
SELECT DISTINCT ON (a.author_gid) a.author_gid, a.username, a.avatar, a.is_bot
  FROM (SELECT s.author_gid, s.username, s.is_bot, s.ev, s.pos,
               first_value(s.avatar_url) OVER (PARTITION BY s.author_gid
                   ORDER BY s.avatar_url IS NULL, s.ev DESC, s.pos DESC) AS avatar
          FROM pg_temp.pgw_stage s
         WHERE s.kind = 'p' AND s.author_gid IS NOT NULL AND s.ev >= $1::integer AND s.ev < $2::integer) a
 ORDER BY a.author_gid, a.ev DESC, a.pos DESC
ON CONFLICT (github_id) DO UPDATE
   SET username = EXCLUDED.username,
       avatar_url = coalesce(EXCLUDED.avatar_url, c.avatar_url),
       is_bot = EXCLUDED.is_bot,
       updated_at = now()
 WHERE (c.username, c.avatar_url, c.is_bot) IS DISTINCT FROM
       (EXCLUDED.username, coalesce(EXCLUDED.avatar_url, c.avatar_url), EXCLUDED.is_bot)
