"""tabscope: neural networks and gradient-boosted trees on tabular data, through one lens.

Sub-packages follow the direction data flows:
``tabscope.datasets`` -> ``tabscope.models`` -> ``tabscope.bench`` -> ``tabscope.reports``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tabscope")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
