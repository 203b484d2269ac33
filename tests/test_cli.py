"""The `tabscope` command as a new user meets it: runs, listings, and clear errors."""

import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing

import numpy as np
import pandas as pd
import pytest

from tabscope import cli
from tabscope.bench.store import DB_NAME, ResultsStore
from tabscope.bench.suite import load_suite
from tabscope.errors import UsageError

from support import tabscope_command, write_suite

SUITE = """
name = "cli"
datasets = ["sklearn:diabetes", "sklearn:wine"]
seeds = [0, 1]
[models.xgboost]
n_estimators = 10
[models.sklearn-gb]
n_estimators = 10
"""


def one_clear_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tabscope: error: ")
    return lines[0]


def test_run_then_results(run_cli, tmp_path):
    suite = write_suite(tmp_path / "cli.toml", SUITE)
    result = run_cli("run", suite, "--out", tmp_path / "out", "--no-report")
    assert result.returncode == 0, result.stderr
    assert "8 cells ok, 0 failed" in result.stdout
    shown = run_cli("results", tmp_path / "out")
    assert shown.returncode == 0, shown.stderr
    assert "diabetes" in shown.stdout and "wine" in shown.stdout and "±" in shown.stdout
    # Both tasks' tables lay out their columns the same way.
    headers = [[cell.strip() for cell in line.strip("┃ ").split("┃")]
               for line in shown.stdout.splitlines() if "dataset" in line and "model" in line]
    assert headers == [["dataset", "model", "accuracy", "log_loss", "roc_auc", "fit s", "seeds ok"],
                       ["dataset", "model", "rmse", "mae", "r2", "fit s", "seeds ok"]]


def test_run_help_describes_the_suite(run_cli):
    shown = run_cli("run", "quick", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "usage: tabscope run" in shown.stdout
    quick = load_suite("quick")
    assert quick.description in " ".join(shown.stdout.split())
    for source in quick.datasets:
        assert source in shown.stdout
    for entry in quick.models:
        assert entry.name in shown.stdout
    plain = run_cli("run", "--help")
    assert "quick" in plain.stdout and quick.description not in " ".join(plain.stdout.split())


def test_user_errors_are_one_line_and_bugs_show_their_traceback(monkeypatch, capsys):
    def buggy_command(args):
        raise ValueError("an internal inconsistency")  # not a UserError: a bug

    monkeypatch.setitem(cli.COMMANDS, "models", buggy_command)
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(["models", "list"])

    def user_mistake(args):
        raise UsageError("--this contradicts --that")

    monkeypatch.setitem(cli.COMMANDS, "models", user_mistake)
    assert cli.main(["models", "list"]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err == "tabscope: error: --this contradicts --that\n"


def test_listings(run_cli):
    models = run_cli("models", "list")
    assert models.returncode == 0
    for name in ("mlp", "xgboost", "lightgbm", "sklearn-hgb", "sklearn-gb"):
        assert name in models.stdout
    datasets = run_cli("datasets", "list")
    assert "sklearn:diabetes" in datasets.stdout and "grinsztajn-num-reg" in datasets.stdout
    shown = run_cli("datasets", "show", "sklearn:wine")
    assert shown.returncode == 0 and "178" in shown.stdout
    suites = run_cli("suites", "list")
    assert "quick" in suites.stdout and "paper-fig5" in suites.stdout


@pytest.mark.parametrize(
    "suite_text, message",
    [
        (SUITE.replace("sklearn:wine", "sklearn:wines"), "wines"),
        (SUITE.replace("[models.sklearn-gb]", "[models.catboost]"), "unknown model 'catboost'"),
        (SUITE.replace('name = "cli"', 'name = "cli'), "not valid TOML"),
        (SUITE.replace("seeds", "seed"), "unknown key 'seed'"),
    ],
    ids=["unknown-dataset", "unknown-model", "malformed-toml", "typo-key"],
)
def test_bad_suites_give_one_clear_line(run_cli, tmp_path, suite_text, message):
    out = tmp_path / "out"
    result = run_cli("run", write_suite(tmp_path / "bad.toml", suite_text), "--out", out)
    assert result.returncode == 2
    assert message in one_clear_line(result)
    assert not (out / DB_NAME).exists() or ResultsStore(out).cells().empty


def test_file_sources(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "size": rng.normal(size=120), "color": rng.choice(["red", "blue", None], size=120),
        "weight": np.where(rng.random(120) < 0.1, np.nan, rng.normal(size=120)),
    })
    frame["price"] = 3 * frame["size"] + rng.normal(size=120)
    frame.to_csv(tmp_path / "data.csv", index=False)
    missing = run_cli("run", write_suite(tmp_path / "s.toml", SUITE.replace(
        '["sklearn:diabetes", "sklearn:wine"]', f'["file:{tmp_path}/data.csv?target=cost"]')),
        "--out", tmp_path / "bad")
    assert missing.returncode == 2 and "cost" in one_clear_line(missing)
    # NaN and string columns are handled: imputed, one-hot / ordinal encoded.
    good = run_cli("run", write_suite(tmp_path / "s2.toml", SUITE.replace(
        '["sklearn:diabetes", "sklearn:wine"]', f'["file:{tmp_path}/data.csv?target=price"]')),
        "--out", tmp_path / "good", "--no-report")
    assert good.returncode == 0, good.stderr
    assert set(ResultsStore(tmp_path / "good").cells()["status"]) == {"ok"}
    frame["price"] = "same"
    frame.to_csv(tmp_path / "one.csv", index=False)
    one_class = run_cli("run", write_suite(tmp_path / "s3.toml", SUITE.replace(
        '["sklearn:diabetes", "sklearn:wine"]', f'["file:{tmp_path}/one.csv?target=price"]')),
        "--out", tmp_path / "one")
    assert one_class.returncode == 2 and "class" in one_clear_line(one_class)


def test_openml_offline_without_cache_is_one_line(run_cli, tmp_path):
    result = run_cli("datasets", "show", "openml-task:1882", "--cache-dir", tmp_path / "empty")
    assert result.returncode == 2
    line = one_clear_line(result)
    assert "1882" in line and str(tmp_path / "empty") in line


def test_debug_shows_the_traceback(run_cli):
    result = run_cli("--debug", "datasets", "show", "sklearn:nope")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
def test_kill_9_halfway_then_resume(tmp_path):
    suite = write_suite(tmp_path / "kill.toml", SUITE.replace('seeds = [0, 1]', 'seeds = [0, 1, 2, 3]')
                        .replace("n_estimators = 10\n[models.sklearn-gb]", "n_estimators = 200\n[models.sklearn-gb]"))
    out = tmp_path / "out"
    command = [*tabscope_command(), "run", str(suite), "--out", str(out), "--no-report"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and process.poll() is None:
        try:
            with closing(sqlite3.connect(f"file:{out / DB_NAME}?mode=ro", uri=True, timeout=30)) as db:
                done = db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        except sqlite3.OperationalError:  # no database yet, or its tables are being created
            done = 0
        if done >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = ResultsStore(out).cells().set_index("cell_id")
    assert 3 <= len(before) < 16
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = ResultsStore(out).cells().set_index("cell_id")
    assert len(after) == 16 and after.index.is_unique
    pd.testing.assert_series_equal(before["fit_seconds"], after.loc[before.index, "fit_seconds"])
    assert ResultsStore(out).integrity_check() == "ok"
