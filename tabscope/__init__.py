"""tabscope: neural networks and gradient-boosted trees on tabular data, through one lens.

Sub-packages follow the direction data flows:
``tabscope.datasets`` -> ``tabscope.models`` -> ``tabscope.bench`` -> ``tabscope.reports``.
The most used names are re-exported here and imported on first use, so ``import tabscope``
stays cheap (torch and the boosting libraries load only when a model is asked for).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tabscope")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_EXPORTS = {
    "load_dataset": "tabscope.datasets",
    "make_split": "tabscope.datasets",
    "prepare_data": "tabscope.datasets",
    "KernelView": "tabscope.models",
    "TelescopingMLPRegressor": "tabscope.models",
    "TelescopingMLPClassifier": "tabscope.models",
    "TelescopingNetRegressor": "tabscope.models",
    "TelescopingNetClassifier": "tabscope.models",
    "TreeLens": "tabscope.models",
    "load_suite": "tabscope.bench.suite",
    "run_suite": "tabscope.bench.runner",
    "ResultsStore": "tabscope.bench.store",
    "Results": "tabscope.bench.results",
    "load_results": "tabscope.bench.results",
    "write_report": "tabscope.reports",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tabscope' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
