"""A process killed mid-ingest leaves whole chunks; running the ingest again completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from limelight.data.ingest import ingest_file
from limelight.store.duckdb import DuckDBEventStore

N_ROWS = 24_000

CHILD = textwrap.dedent("""
    import sys, time
    from contextlib import contextmanager
    from limelight.data.ingest import ingest_file
    from limelight.settings import Settings
    from limelight.store.duckdb import DuckDBEventStore

    class SlowStore(DuckDBEventStore):
        # The real store; it only announces each committed chunk and then dawdles, so the
        # parent can kill it between (or inside) later chunks.
        @contextmanager
        def transaction(self):
            outer = getattr(self._local, "depth", 0) == 0
            with super().transaction() as cur:
                yield cur
            if outer:
                print("committed", self.count("events"), flush=True)
                time.sleep(1.0)

    store = SlowStore(sys.argv[1])
    ingest_file(store, sys.argv[2], chunk_rows=2_000, settings=Settings())
    print("finished", flush=True)
""")


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun(tmp_path, settings):
    csv_path = tmp_path / "events.csv"
    with open(csv_path, "w") as fh:
        fh.write("user_id,item_id,type,timestamp,value\n")
        for i in range(N_ROWS):
            fh.write(f"u{i % 300},i{i % 997},view,{1704067200 + i},\n")
        fh.write("u1,i1,view,not-a-time,\n")  # one rejected row, to check quarantine resumes
    db = tmp_path / "store.duckdb"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(csv_path)],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    committed = []
    for line in child.stdout:
        if line.startswith("committed"):
            committed.append(int(line.split()[1]))
            if len(committed) == 2:  # the run record, then the first chunk
                child.send_signal(signal.SIGKILL)
                break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, "the child finished before it was killed"

    store = DuckDBEventStore(str(db))
    stored = store.count("events")
    assert 0 < stored < N_ROWS
    assert stored == committed[-1]  # the committed chunk, and nothing of the one killed
    assert store.sql("SELECT count(DISTINCT event_id) AS n FROM events")["n"][0] == stored
    assert store.read("ingest_runs")["status"].tolist() == ["running"]

    report = ingest_file(store, csv_path, chunk_rows=2_000, settings=settings)
    assert report.reconciled and report.read == N_ROWS + 1
    assert report.accepted == N_ROWS - stored and report.duplicates == stored
    assert store.count("events") == N_ROWS
    assert store.sql("SELECT count(DISTINCT event_id) AS n FROM events")["n"][0] == N_ROWS
    assert store.count("quarantine") == 1
    store.close()
