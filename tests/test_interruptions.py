"""Interrupted runs: SIGINT and SIGKILL at seeded random moments, then resume.

After every interruption the store must pass `PRAGMA integrity_check` and hold each cell at
most once; the final rerun must complete every cell exactly once.
"""

import random
import signal
import subprocess
import time

import pytest

from tabscope.bench.store import DB_NAME, ResultsStore

from support import tabscope_command, write_suite

SUITE = """
name = "interrupt"
datasets = ["sklearn:diabetes", "sklearn:wine"]
seeds = [0, 1, 2]
[models.xgboost]
n_estimators = 60
[models.sklearn-gb]
n_estimators = 80
"""
N_CELLS = 12
N_INTERRUPTIONS = 5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_runs_resume_cleanly(tmp_path, signum):
    out = tmp_path / "out"
    command = [*tabscope_command(), "run", str(write_suite(tmp_path / "s.toml", SUITE)),
               "--out", str(out), "--no-report", "--no-progress"]
    rng = random.Random(int(signum))
    for attempt in range(N_INTERRUPTIONS):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Startup (imports) takes ~2-4 s; the moments spread over startup and cell work.
        time.sleep(rng.uniform(1.0, 7.0))
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        # 130: interrupted and reported; 0: finished before the signal; -SIGINT: the signal
        # came while the interpreter was shutting down, after everything was stored.
        if signum == signal.SIGINT and process.returncode not in (0, 130, -signal.SIGINT):
            pytest.fail(f"SIGINT gave exit status {process.returncode}: {stderr}")
        assert "Traceback" not in stderr
        if (out / DB_NAME).exists():
            store = ResultsStore(out)
            assert store.integrity_check() == "ok"
            cells = store.cells()
            assert cells["cell_id"].is_unique and len(cells) <= N_CELLS
    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    store = ResultsStore(out)
    cells = store.cells()
    assert len(cells) == N_CELLS and cells["cell_id"].is_unique
    assert set(cells["status"]) == {"ok"}
    assert store.integrity_check() == "ok"
    for path in cells["predictions_path"]:
        assert len(store.read_frame(path)) > 0
