"""Estimators and their kernel views: telescoping networks, tree lenses, the registry."""

from .kernel_view import KernelView
from .networks import (
    TelescopingMLPClassifier,
    TelescopingMLPRegressor,
    TelescopingNetClassifier,
    TelescopingNetRegressor,
)
from .tree_lens import TreeLens

__all__ = [
    "KernelView",
    "TelescopingMLPClassifier",
    "TelescopingMLPRegressor",
    "TelescopingNetClassifier",
    "TelescopingNetRegressor",
    "TreeLens",
]
