"""The line between a user's mistake and a bug in tabscope.

Errors raised at the boundaries where users give tabscope something (a suite file, a dataset
source, a results directory, a command-line argument, an optional dependency to install)
derive from :class:`UserError`: the command line prints their message as one line and exits
with status 2. Anything else that escapes is a bug, and the command line shows its traceback
(exit status 1). Each user error also derives from the built-in type a Python caller expects
(ValueError, ImportError), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["AnalysisTooCostlyError", "MissingDependencyError", "UsageError", "UserError"]


class UserError(Exception):
    """Something the user asked for cannot be done as asked; the message says what to change."""


class UsageError(UserError, ValueError):
    """Arguments that contradict each other or name something that does not exist."""


class MissingDependencyError(UserError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


class AnalysisTooCostlyError(ValueError):
    """An analysis would cost more than its budget; the message gives the estimate.

    The benchmark records such an analysis as skipped, with the message, never as failed
    (docs/design.md §1.9).
    """
