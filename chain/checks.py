"""Argument checks shared by the contract wrappers: raised before anything is signed or sent.

Each names the argument and the value, so a bad call fails clearly instead of as an ABI encoding error
or a revert.
"""
from __future__ import annotations

from typing import Any

from eth_utils import is_address

from .errors import ChainInputError

__all__ = ["check_address", "check_bytes32", "check_uint"]


def check_uint(name: str, value: Any, bound: int = 2**256) -> None:
    """``value`` must be an ``int`` (not ``bool``) in ``[0, bound)``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < bound:
        raise ChainInputError(f"{name} must be an int in [0, {bound}), got {value!r}")


def check_bytes32(name: str, value: Any) -> None:
    """``value`` must be exactly 32 bytes (a ``bytes32`` argument)."""
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ChainInputError(f"{name} must be 32 bytes, got {value!r}")


def check_address(name: str, value: Any) -> None:
    """``value`` must be a ``0x`` address string."""
    if not isinstance(value, str) or not is_address(value):
        raise ChainInputError(f"{name} must be a 0x address, got {value!r}")
