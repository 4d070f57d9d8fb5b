"""Errors of threshold decryption: one type per refusal, each naming the holder, the round and the reason.

Messages carry public values only (holder ids, rounds, slots, digests, share indices), never key shares,
masks or table entries.
"""
from __future__ import annotations

from crypto.errors import CryptoError, KeyFormatError

__all__ = [
    "ThresholdError", "ThresholdSetupError", "HolderFileError", "ShareRefused", "TruncatedShareError",
    "UnregisteredHolderError", "WrongRoundError", "WrongCiphertextError", "WrongSlotError", "DuplicateShareError",
    "MalformedShareError", "TooFewSharesError", "InconsistentSharesError", "WrongOpeningError", "SlotSpentError",
]


class ThresholdError(CryptoError):
    """Base class of every threshold-decryption error."""


class ThresholdSetupError(ThresholdError, ValueError):
    """Parameters or dealer inputs are unusable (threshold out of range, unknown holder, margin too small, ...)."""


class HolderFileError(ThresholdError, KeyFormatError):
    """A holder's key-share or slot file is missing, truncated, corrupt or belongs to another holder/setup."""


class SlotSpentError(ThresholdError):
    """A one-time decryption slot was already used (or bound to another round/ciphertext): never reused."""


class ShareRefused(ThresholdError):
    """A holder's share blob is refused. ``holder``, ``round`` and ``reason`` are public fields."""

    def __init__(self, holder: str | None, round_: int | None, reason: str):
        self.holder, self.round, self.reason = holder, round_, reason
        super().__init__(f"share from holder {holder or '?'} for round {'?' if round_ is None else round_}: {reason}")


class TruncatedShareError(ShareRefused):
    """The blob does not parse (truncated, trailing bytes, bad digest, wrong magic)."""


class UnregisteredHolderError(ShareRefused):
    """The blob names a holder that is not registered in the threshold setup."""


class WrongRoundError(ShareRefused):
    """The blob is for another round."""


class WrongCiphertextError(ShareRefused):
    """The blob is for another output ciphertext (digest)."""


class WrongSlotError(ShareRefused):
    """The blob uses another one-time slot than the one bound to this round."""


class DuplicateShareError(ShareRefused):
    """A second share of the same kind from the same holder for the same round."""


class MalformedShareError(ShareRefused):
    """The blob parses but its values do not fit (share indices, counts, ranges, kind)."""


class WrongOpeningError(ShareRefused):
    """A table share answers for another opened value c than the one the mask shares give."""


class TooFewSharesError(ThresholdError):
    """Fewer than k valid shares: nothing is opened."""


class InconsistentSharesError(ThresholdError):
    """Two holders of the same additive share sent different values: someone cheated; nothing is opened.

    ``conflicts`` lists ``(share index, holders)`` per disagreement; ``attributed`` is the holder blamed when
    the conflicts single one out (see docs/THRESHOLD.md), else ``None``; ``suspects`` the smallest set
    that must contain a cheater.
    """

    def __init__(self, round_: int, kind: str, conflicts: list, suspects: tuple, attributed: str | None):
        self.round, self.kind, self.conflicts, self.suspects, self.attributed = round_, kind, conflicts, suspects, attributed
        shown = "; ".join(f"share {j}: holders {', '.join(h)} disagree" for j, h in conflicts)
        blame = f"cheater: {attributed}" if attributed else f"a cheater among {', '.join(suspects)} (not attributable)"
        super().__init__(f"round {round_}: {kind} shares inconsistent ({shown}); {blame}")
