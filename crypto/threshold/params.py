"""Threshold parameters: replicated additive sharing over Z_2^64, the modulus-switch width, sizes.

Replicated k-of-n sharing (no Shamir: Z_2^64 has no inverses). The secret is split into one additive share
per (k−1)-subset T of the holders, in a fixed order; share T goes to every holder *not* in T. Any k holders
together hold every share (a share is missed only by the k−1 members of its T); any k−1 holders C miss the
share T = C, which is uniform to them. 2-of-3: three shares, each holder keeps two, each share is held by two
holders. n-of-n: n shares, one per holder.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

from crypto.threshold.errors import ThresholdSetupError

__all__ = ["ThresholdParams", "PARAMETER_SETS", "GUARD_BITS", "MAX_SWITCH_BITS", "switch_bits", "margin"]

# Named parameter records [decided]: (k, n). 2-of-3 is the default.
PARAMETER_SETS = {"2of3": (2, 3), "3of3": (3, 3), "2of2": (2, 2), "3of5": (3, 5)}

# The modulus-switch rounding may use at most 2^-GUARD_BITS of the decoding half-gap Δ/2 [decided]: it then
# raises the probability that a value near concrete's own noise bound decodes wrongly only marginally
# (docs/THRESHOLD.md, "Choosing k").
GUARD_BITS = 6
MAX_SWITCH_BITS = 20  # tables have 2^k entries per value and per share: 1 MiB each at 20 bits with 1-byte entries

_HOLDER = re.compile(r"\A[a-z][a-z0-9_]{0,47}\Z")


@dataclass(frozen=True)
class ThresholdParams:
    """k-of-n replicated additive sharing among named holders (role names, e.g. ``key_holder_1``)."""

    holders: tuple[str, ...]
    threshold: int

    def __post_init__(self):
        holders = tuple(self.holders)
        object.__setattr__(self, "holders", holders)
        for holder in holders:
            if type(holder) is not str or not _HOLDER.match(holder):
                raise ThresholdSetupError(f"holders: {holder!r} is not a holder name (lowercase letter then [a-z0-9_])")
        if len(set(holders)) != len(holders):
            raise ThresholdSetupError(f"holders: {list(holders)} has duplicates")
        if type(self.threshold) is not int or not 2 <= self.threshold <= len(holders) <= 16:
            raise ThresholdSetupError(f"threshold: k = {self.threshold!r} with n = {len(holders)} holders; need 2 ≤ k ≤ n ≤ 16")
        if math.comb(len(holders), self.threshold - 1) > 64:
            raise ThresholdSetupError(f"threshold: {self.threshold} of {len(holders)} needs "
                                      f"{math.comb(len(holders), self.threshold - 1)} replicated shares (more than 64)")

    @classmethod
    def named(cls, name: str, holders) -> "ThresholdParams":
        """A named record of :data:`PARAMETER_SETS` (e.g. ``"2of3"``) for these holder names."""
        if name not in PARAMETER_SETS:
            raise ThresholdSetupError(f"threshold parameters: {name!r} is not one of {sorted(PARAMETER_SETS)}")
        k, n = PARAMETER_SETS[name]
        holders = tuple(holders)
        if len(holders) != n:
            raise ThresholdSetupError(f"threshold parameters {name}: {len(holders)} holders given, need {n}")
        return cls(holders, k)

    @property
    def name(self) -> str:
        return f"{self.threshold}of{len(self.holders)}"

    @cached_property
    def share_sets(self) -> tuple[frozenset, ...]:
        """Share j is missed by exactly the holders of ``share_sets[j]`` (a (k−1)-subset)."""
        return tuple(frozenset(self.holders[i] for i in subset)
                     for subset in combinations(range(len(self.holders)), self.threshold - 1))

    @property
    def share_count(self) -> int:
        return len(self.share_sets)

    def shares_of(self, holder: str) -> tuple[int, ...]:
        if holder not in self.holders:
            raise ThresholdSetupError(f"holder {holder!r} is not registered (holders: {', '.join(self.holders)})")
        return tuple(j for j, missing in enumerate(self.share_sets) if holder not in missing)

    def holders_of(self, share: int) -> tuple[str, ...]:
        return tuple(h for h in self.holders if h not in self.share_sets[share])

    def as_dict(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "holders": list(self.holders),
                "share_count": self.share_count}


def switch_bits(width: int, share_count: int) -> int:
    """The modulus-switch target Z_2^k for outputs of width p [derived].

    The holders round ``b`` and each of the S partial inner products to Z_2^k separately: the sum is off by at
    most (S + 1)/2 units of 2^(64−k). Decoding needs the error below Δ_k/2 = 2^(k−p−2) units; requiring
    (S + 1)/2 ≤ 2^(k−p−2−GUARD_BITS) gives k = p + 2 + GUARD_BITS + ⌈log2((S + 1)/2)⌉.
    """
    k = width + 2 + GUARD_BITS + max(0, math.ceil(math.log2((share_count + 1) / 2)))
    if k > MAX_SWITCH_BITS:
        raise ThresholdSetupError(f"output width {width} with {share_count} shares needs {k}-bit tables "
                                  f"(more than {MAX_SWITCH_BITS})")
    return k


def margin(width: int, share_count: int) -> dict:
    """The rounding budget against the output encoding, all as log2 in units of Z_2^64 [derived]."""
    k = switch_bits(width, share_count)
    worst = (share_count + 1) / 2 * 2.0 ** (64 - k)
    half_gap = 2.0 ** (64 - width - 2)
    return {"switch_bits": k, "delta_log2": 64 - width - 1, "half_gap_log2": 64 - width - 2,
            "worst_rounding_log2": math.log2(worst), "rounding_share_of_half_gap": worst / half_gap}
