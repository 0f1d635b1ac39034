"""The sink's Postgres writer on its own against the real server, driven the
way the sink drives it (batches sent with pgw_commit_start, their outcome
from pgw_commit_poll, refused events through the skip handler): schema
migrations, idempotent upserts, text cleaning, seq ordering, bad events,
commits in flight, reconnects, secrets kept out of messages
(sink/test_pg_writer.c does the checking; `ctest -L pg` runs the same
binary with BACKFILL_TEST_PG)."""
import subprocess

from harness import binary


def test_pg_writer(postgres):
    out = subprocess.run([binary("test_pg_writer"), postgres], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "OK: 0 failure(s)" in out.stdout
