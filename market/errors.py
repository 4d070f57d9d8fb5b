"""The base of every error ``market`` raises on bad input: callers (the command line) catch :class:`MarketError`
for "the input is not a valid market, schedule, report or setting". Each message names the field and the value."""
from __future__ import annotations

__all__ = ["MarketError"]


class MarketError(ValueError):
    """Base class of every error raised by ``market`` (a ``ValueError``: bad input, named in the message)."""
