"""Shape of the selection circuit: the compile-time parameters, the cache key, the digit layout, constants."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crypto.encoding import canonical_bytes, digest
from crypto.errors import CryptoError
from market.limits import MAX_RATE_BITS
from market.selection import HurdleMode
from market.terms import MarketTerms

TLU_BITS = 4  # widest table lookup in the circuit (docs/CIRCUIT.md, formulation "radix")
TLU_MAX = (1 << TLU_BITS) - 1  # largest lookup input; also the most 0/1 bits summed before one any/all lookup
FORMULATION = "radix"  # the one formulation (tournament, pairwise, limbs were removed: figures in bench_fhe.json)
STRATEGIES = ("multi",)  # concrete refuses tfhers inputs under "mono" (docs/OWNER_ENCRYPTION.md §1)
ARTIFACT_NAME = "server.zip"
OUTPUT_FIELDS = ("trade", "invalid_mm", "invalid_rm", "volume", "b_offset", "joint_profit")


class CircuitError(CryptoError, ValueError):
    """Bad circuit input (names the field and value) or a blob that fails its digest check."""


RULE_VERSION = "no-cut-in-circuit-1"  # rule, encoding and graph: the circuit computes the no-cut test itself


def circuit_cache_key(terms: MarketTerms, strategy: str = "multi") -> bytes:
    """SHA-256 of the canonical terms, formulation, rule version and parameter strategy: the cache key of a
    compiled circuit (an artifact of another rule or input encoding can never be loaded from the same folder)."""
    body: dict[str, Any] = dict(terms.as_dict()) | {"formulation": FORMULATION, "parameter_strategy": strategy,
                                                    "rule": RULE_VERSION}
    return digest(canonical_bytes(body, name="terms"))


@dataclass(frozen=True)
class CircuitShape:
    """The compile-time parameters the circuit depends on (derived from :class:`MarketTerms`)."""

    grid: int
    rate_bits: int
    hurdle_bits: int
    hurdle_factor: int  # c: 2 for margin (s/2 >= h), 1 for spread (s >= h)
    strategy: str = "multi"  # concrete parameter_selection_strategy

    formulation = FORMULATION  # a class constant: it names the cache key and the cost report

    @classmethod
    def from_terms(cls, terms: MarketTerms, strategy: str = "multi") -> "CircuitShape":
        if strategy not in STRATEGIES:
            raise CircuitError(f"strategy = {strategy!r}: must be one of {', '.join(STRATEGIES)}")
        if terms.rate_bits > MAX_RATE_BITS:
            raise CircuitError(f"terms.rate_bits = {terms.rate_bits}: the circuit supports at most {MAX_RATE_BITS} bits")
        if terms.hurdle_bits > terms.rate_bits:
            raise CircuitError(
                f"terms.hurdle_bits = {terms.hurdle_bits}: must not exceed rate_bits = {terms.rate_bits}"
            )
        return cls(
            grid=terms.grid,
            rate_bits=terms.rate_bits,
            hurdle_bits=terms.hurdle_bits,
            hurdle_factor=2 if terms.hurdle_mode is HurdleMode.MARGIN else 1,
            strategy=strategy,
        )

    @property
    def max_offset(self) -> int:
        return (1 << self.rate_bits) - 1

    @property
    def max_joint(self) -> int:
        return self.grid * self.max_offset

    @property
    def joint_bits(self) -> int:
        """Bits of ``J <= N·max_offset`` plus a sign bit (reported in :class:`CostReport`)."""
        return (self.max_joint + 1).bit_length() + 1

    @property
    def hurdle_digits(self) -> tuple[tuple[int, int, int], ...]:
        """The hurdle's digits as ``(width, column, scale)``: hurdle digit k, ``width`` bits wide, is the digit
        ``column`` of the rate layout of ``G = c·h`` (the hurdle test's threshold) times ``scale``
        (:func:`hurdle_digits`)."""
        return hurdle_digits(self.rate_layout, self.hurdle_bits, self.hurdle_factor)

    @property
    def digit_widths(self) -> tuple[int, ...]:
        """The width in bits of every digit of one dealer's report, in input order (:func:`report_digits`):
        the digits of ``offset_0 .. offset_N`` (rate layout each), then the hurdle's digits."""
        return self.rate_layout * (self.grid + 1) + tuple(w for w, _, _ in self.hurdle_digits)

    @property
    def digit_count(self) -> int:
        """Digits per dealer (the same for both sides): one TFHE-rs LWE each."""
        return len(self.digit_widths)

    @property
    def hurdle_top_bound(self) -> int:
        """Largest value of the top rate-layout digit of ``G = c·h_max`` (0: the top digit is always 0)."""
        return (self.hurdle_factor * ((1 << self.hurdle_bits) - 1)) >> _offsets(self.rate_layout)[-1]

    @property
    def rate_layout(self) -> tuple[int, ...]:
        """Digit widths of a rate offset in formulation "radix" (least significant first)."""
        return rate_layout(self.rate_bits)

    @property
    def joint_digits(self) -> int:
        """Base-8 digits of ``J + 1 <= N·max_offset + 1`` (the width of every output row)."""
        return -(-(self.max_joint + 1).bit_length() // RADIX_BITS)

    @property
    def volume_digits(self) -> int:
        return -(-self.grid.bit_length() // RADIX_BITS)



RADIX_BITS = 3  # digit width: a difference of two digits minus a borrow, offset to be non-negative, fits TLU_BITS
OUTPUT_BASE = 1 << RADIX_BITS  # outputs of "radix" are base-8 digit rows that SelectionOutput.from_values recombines


def rate_layout(bits: int) -> tuple[int, ...]:
    """Digit widths (least significant first) of a ``bits``-bit value in formulation "radix" [decided].

    3-bit digits, the most significant one narrower (1-2 bits): the top of a difference then stays a small
    signed value that needs no normalising lookup, and a mask bit still fits a 4-bit lookup next to it.
    10 bits -> (3, 3, 3, 1), 9 bits -> (3, 3, 2, 1), 8 bits -> (3, 3, 2)."""
    full, rest = divmod(bits, RADIX_BITS)
    if rest == 0:
        return (RADIX_BITS,) * (full - 1) + (2, 1) if bits > 0 else ()
    return (RADIX_BITS,) * full + (rest,)


def hurdle_digits(layout, hurdle_bits: int, factor: int) -> tuple[tuple[int, int, int], ...]:
    """The digits of a ``hurdle_bits``-bit hurdle h, aligned so that ``G = factor·h`` (factor 1 or 2) in the rate
    ``layout`` is linear in them [decided]: digit ``i`` of G covers G's bits ``[o_i, o_(i+1))`` (the top one all
    bits from ``o_top``), i.e. h's bits shifted down by ``log2(factor)``; its h-digit times ``scale`` is that
    G-digit. (3, 3, 3, 1) with 8-bit hurdles: margin (2, 3, 3) (G_0 = 2·h_0), spread (3, 3, 2)."""
    shift = factor.bit_length() - 1
    offsets = _offsets(layout)
    out = []
    for i, start in enumerate(offsets):
        lo = max(0, start - shift)
        hi = hurdle_bits if i == len(offsets) - 1 else min(hurdle_bits, offsets[i + 1] - shift)
        if hi > lo:
            out.append((hi - lo, i, 1 << (lo + shift - start)))
    return tuple(out)


def _offsets(layout) -> list[int]:
    return [int(v) for v in np.cumsum((0,) + tuple(layout))[:-1]]


def _to_digits(value: int, layout) -> list[int]:
    """``value`` as digits of ``layout`` (least significant first); the caller has range-checked it."""
    out = []
    for width in layout:
        out.append(value & ((1 << width) - 1))
        value >>= width
    return out
