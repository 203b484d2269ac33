"""Interrupted runs: SIGINT and SIGKILL at seeded random moments, then resume.

After every interruption the store must pass `PRAGMA integrity_check` and hold each cell at
most once; the final rerun must complete every cell exactly once.
"""

import random
import signal
import sqlite3
import subprocess
import time
from contextlib import closing

import pytest

from tabscope.bench.store import DB_NAME, ResultsStore

from support import tabscope_command, write_suite

SUITE = """
name = "interrupt"
datasets = ["sklearn:diabetes", "sklearn:wine"]
seeds = [0, 1, 2]
[models.xgboost]
n_estimators = 400
[models.sklearn-gb]
n_estimators = 400
"""
# About 8 s of cell work on one core, so that the runs below are cut short mid-run.
N_CELLS = 12
N_INTERRUPTIONS = 5


def _stored_cells(out) -> int:
    """Cells stored so far, read without creating anything (the run may still be doing so)."""
    try:
        with closing(sqlite3.connect(f"file:{out / DB_NAME}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:  # no database, or its tables are not created yet
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_runs_resume_cleanly(tmp_path, signum):
    out = tmp_path / "out"
    command = [*tabscope_command(), "run", str(write_suite(tmp_path / "s.toml", SUITE)),
               "--out", str(out), "--no-report", "--no-progress"]
    rng = random.Random(int(signum))
    interrupted_mid_run = 0
    for attempt in range(N_INTERRUPTIONS):
        before = _stored_cells(out)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if attempt % 2:
            # A moment during startup (imports, loading and splitting the datasets).
            time.sleep(rng.uniform(0.2, 2.5))
        else:
            # A moment among the cells: once this run has stored one, a little later.
            deadline = time.time() + 60
            while _stored_cells(out) == before and process.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.0))
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        # 130: interrupted and reported; -SIGINT: the signal came while the interpreter was
        # shutting down, after everything was stored; -SIGKILL: killed. 0 means the run
        # finished before the signal, which this test must not mistake for an interruption.
        interrupted = {signal.SIGINT: (130, -signal.SIGINT), signal.SIGKILL: (-signal.SIGKILL,)}[signum]
        assert process.returncode in (0, *interrupted), (process.returncode, stderr)
        assert "Traceback" not in stderr
        after = _stored_cells(out)
        if (out / DB_NAME).exists():
            store = ResultsStore(out)
            assert store.integrity_check() == "ok"
            cells = store.cells()
            assert cells["cell_id"].is_unique and len(cells) <= N_CELLS
        if process.returncode in interrupted and before < after < N_CELLS:
            interrupted_mid_run += 1
    # The moments must really cut runs short between stored cells, not only at startup or
    # after the end, or the resume below proves nothing.
    assert interrupted_mid_run >= 2, f"only {interrupted_mid_run} runs were interrupted mid-run"
    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    store = ResultsStore(out)
    cells = store.cells()
    assert len(cells) == N_CELLS and cells["cell_id"].is_unique
    assert set(cells["status"]) == {"ok"}
    assert store.integrity_check() == "ok"
    for path in cells["predictions_path"]:
        assert len(store.read_frame(path)) > 0
