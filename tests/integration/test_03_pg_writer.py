"""The sink's Postgres writer on its own against the real server: schema
migrations, idempotent upserts, text cleaning, seq ordering, bad events,
reconnects (tests/../sink/test_pg_writer.c does the checking)."""
import subprocess

from harness import binary


def test_pg_writer(postgres):
    out = subprocess.run([binary("test_pg_writer"), postgres], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
