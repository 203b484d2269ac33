"""Estimators and their kernel views: telescoping networks, tree lenses, the registry."""

from .kernel_view import KernelView

__all__ = ["KernelView"]
