"""JSON as the project reads it: :mod:`common.strict_json`, named here too for ``market``'s readers."""
from __future__ import annotations

from common.strict_json import MAX_INT_DIGITS, JsonInputError, loads

__all__ = ["JsonInputError", "MAX_INT_DIGITS", "loads"]
