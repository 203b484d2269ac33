"""The package installs as one `tabscope` whose sub-packages are the repository's folders."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tabscope

pytestmark = pytest.mark.slow  # builds and imports an installed package: seconds a test

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"bench": "bench", "datasets": "datasets", "models": "models",
               "reports": "reports", "bench.perf": "bench/perf"}


@pytest.mark.parametrize("name", sorted(SUBPACKAGES))
def test_subpackage_maps_to_its_folder(name):
    module = __import__(f"tabscope.{name}", fromlist=["_"])
    folder = Path(module.__file__).resolve().parent
    mode = os.environ.get("TABSCOPE_INSTALL_MODE")
    if mode == "editable":
        assert folder == REPO / SUBPACKAGES[name]
    elif mode == "wheel":
        # A regular install copies the folders under site-packages/tabscope/.
        assert "site-packages" in folder.parts
        assert folder.parts[-len(name.split(".")) - 1:] == ("tabscope", *name.split("."))
    else:
        assert folder in (REPO / SUBPACKAGES[name], Path(tabscope.__file__).resolve().parent.joinpath(*name.split(".")))


def test_builtin_suites_ship_with_the_package():
    from tabscope.bench.suite import builtin_suites

    suites = builtin_suites()
    assert {"quick", "paper-fig5"} <= set(suites)
    assert all(path.is_file() for path in suites.values())


def test_console_script_runs():
    script = shutil.which("tabscope", path=os.path.dirname(sys.executable))
    assert script is not None, "the tabscope console script is not installed"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"tabscope {tabscope.__version__}"
    assert tabscope.__version__ != "0.0.0"


def test_top_level_exports_resolve_lazily(tmp_path):
    import subprocess as sp

    code = ("import sys, tabscope; assert 'torch' not in sys.modules; "
            "from tabscope import TreeLens, TelescopingMLPRegressor, load_suite, run_suite, "
            "write_report, load_dataset, KernelView; print(TreeLens.__module__)")
    # Away from the checkout: `python -c` puts the working directory first on sys.path.
    result = sp.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                    cwd=tmp_path)
    assert result.stdout.strip() == "tabscope.models.tree_lens"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tabscope.nothing  # noqa: B018
