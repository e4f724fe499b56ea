"""Errors a user can cause.

The CLI turns a :class:`UserError` into one line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, option, model), not with refusal-atlas."""

    exit_code = 2
