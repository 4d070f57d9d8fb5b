"""The base of every error ``protocol`` raises for a failure the user can act on: the command line catches
:class:`ProtocolPackageError` and prints its message as one line (exit status 1)."""
from __future__ import annotations

__all__ = ["ProtocolPackageError", "DeploymentError"]


class ProtocolPackageError(Exception):
    """Base class of the errors raised by ``protocol``; the message names the file, round, role or value."""


class DeploymentError(ProtocolPackageError):
    """The data directory does not hold a usable market (or holds an incompatible one)."""
