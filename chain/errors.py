"""The chain package's exceptions: one base, :class:`ChainPackageError`, for everything ``chain`` raises (the command
line catches it), and one type, :class:`ChainError`, for every revert, whatever the backend."""
from __future__ import annotations

import requests
from web3.exceptions import ContractLogicError, ProviderConnectionError, Web3RPCError

_REVERT_PREFIXES = ("execution reverted: ", "execution reverted:", "VM Exception while processing transaction: revert ")


class ChainPackageError(Exception):
    """Base class of every error raised by ``chain``; the message names the argument, file, node or revert."""


class ChainError(ChainPackageError):
    """A transaction or call was refused by the chain. ``reason`` is the contract's revert string
    (e.g. ``"deadline passed"``), identical on the embedded EVM and on a JSON-RPC node."""

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(reason if detail is None else f"{reason} ({detail})")


class ChainUnavailable(ChainError):
    """The JSON-RPC node at ``url`` does not answer."""

    def __init__(self, url: str, detail: str | None = None) -> None:
        self.url = url
        super().__init__(f"chain node not reachable at {url}", detail=detail)


class ChainInputError(ChainPackageError, ValueError):
    """An argument to a chain call is malformed; raised before anything is signed or sent.
    The message names the argument and the value."""


class JournalError(ChainPackageError):
    """The embedded chain's journal cannot be replayed to the state it recorded."""


def revert_reason(message: str) -> str:
    """The bare revert string from a backend's error message ("execution reverted: x" -> "x")."""
    text = str(message).strip()
    if text.startswith("('") and "'," in text:  # web3 sometimes stringifies (message, data) tuples
        text = text[2 : text.index("',")]
    for prefix in _REVERT_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :].strip()
    if text == "execution reverted":
        return ""
    return text


def as_chain_error(exc: BaseException, url: str | None = None) -> ChainError | None:
    """Map a backend exception to ChainError (or ChainUnavailable); None if it is not a chain refusal."""
    from eth_tester.exceptions import TransactionFailed

    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, TransactionFailed):
        return ChainError(revert_reason(exc.args[0] if exc.args else str(exc)))
    if isinstance(exc, ContractLogicError):
        return ChainError(revert_reason(exc.message or str(exc)))
    if isinstance(exc, Web3RPCError):
        message = exc.message or str(exc)
        if "revert" in message:
            return ChainError(revert_reason(message))
        return ChainError(f"node {url} refused the call: {message}" if url else message)  # name the node
    if isinstance(exc, ProviderConnectionError) or _is_connection_error(exc):
        return ChainUnavailable(url or "?", detail=type(exc).__name__)
    return None


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError))
