"""The circuit's inputs and outputs in plaintext: packing a report into digits, decoding the output rows, the
inputset concrete sizes the circuit from."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.vocabulary import Side
from crypto.circuit.shape import OUTPUT_BASE, OUTPUT_FIELDS, CircuitError, CircuitShape, _to_digits
from market.selection import NO_TRADE, Instruction
from market.terms import MarketTerms


def report_digits(shape: CircuitShape, side: str, offsets, hurdle) -> list[int]:
    """The digits one dealer encrypts (one TFHE-rs LWE each), in the order the circuit reads them, after range
    checks: the digits of ``offset_0 .. offset_N`` (``shape.rate_layout`` each, least significant first), then
    the hurdle's digits (``shape.hurdle_digits``, aligned so that ``c·h`` is linear in them), each stored as
    ``digit + 1`` [decided]: digit k lies in ``[1, 2**shape.digit_widths[k]]`` (at most 8), so that 0 -- an
    all-zero ciphertext -- is invalid like every other value outside it. The circuit checks every digit
    itself too (a dealer encrypts its own; radix.import_tables).

    Raises :class:`CircuitError` naming the field, index and value before anything is encrypted. Monotonicity
    is *not* checked here: the circuit checks it and raises the dealer's ``invalid`` flag. No survivor
    threshold is encoded: the circuit computes the no-cut test from the schedules (docs/CIRCUIT.md).
    """
    field_name = {Side.MM: "b_offsets", Side.RM: "a_offsets"}.get(side)
    if field_name is None:
        raise CircuitError(f"side = {side!r}: must be 'mm' or 'rm'")
    try:
        items = list(offsets)
    except TypeError:
        raise CircuitError(f"{field_name}: expected a sequence of integers, got {type(offsets).__name__}") from None
    if len(items) != shape.grid + 1:
        raise CircuitError(f"{field_name}: {len(items)} values, the circuit takes N+1 = {shape.grid + 1}")
    for q, value in enumerate(items):
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise CircuitError(f"{field_name}[{q}] = {value!r}: must be an integer offset in bp")
        if not 0 <= int(value) <= shape.max_offset:
            raise CircuitError(
                f"{field_name}[{q}] = {int(value)}: outside [0, {shape.max_offset}] ({shape.rate_bits} bits)"
            )
    hurdle_name = f"h_{side}"
    if not isinstance(hurdle, (int, np.integer)) or isinstance(hurdle, (bool, np.bool_)):
        raise CircuitError(f"{hurdle_name} = {hurdle!r}: must be an integer in bp")
    if not 0 <= int(hurdle) <= (1 << shape.hurdle_bits) - 1:
        raise CircuitError(
            f"{hurdle_name} = {int(hurdle)}: outside [0, {(1 << shape.hurdle_bits) - 1}] ({shape.hurdle_bits} bits)"
        )
    layout = shape.rate_layout
    digits = [d for v in items for d in _to_digits(int(v), layout)]
    digits += _to_digits(int(hurdle), [w for w, _, _ in shape.hurdle_digits])
    return [d + 1 for d in digits]


def pack_report(shape: CircuitShape, side: str, offsets, hurdle) -> np.ndarray:
    """:func:`report_digits` as an array (the simulate backend's input)."""
    return np.array(report_digits(shape, side, offsets, hurdle), dtype=np.int64)


@dataclass(frozen=True)
class SelectionOutput:
    """The decrypted circuit output, as rate offsets (add the base rate with :meth:`instruction`).

    ``invalid_mm`` / ``invalid_rm``: that dealer's input is not a report (a digit out of range, a set padding
    bit, a reversed step in its own schedule); ``invalid`` is either. Either flag means no trade."""

    trade: bool
    invalid_mm: bool
    invalid_rm: bool
    volume: int
    r_mm_offset: int
    r_rm_offset: int
    joint_profit: int

    @property
    def invalid(self) -> bool:
        return self.invalid_mm or self.invalid_rm

    @classmethod
    def from_values(cls, values) -> "SelectionOutput":
        """From the circuit's raw ``[trade, invalid_mm, invalid_rm, Q_sel, b̂_sel, J'_sel]``; checks internal
        consistency.

        Six rows of base-8 digits (least significant first, shape ``(6, D)``, or flattened); a row's value is
        ``Σ digit_j·8**j``. Six plain values are the ``D = 1`` case."""
        flat = [int(v) for v in np.asarray(values).reshape(-1)]
        rows = len(OUTPUT_FIELDS)
        if not flat or len(flat) % rows:
            raise CircuitError(f"circuit output: {len(flat)} values, expected {rows} rows of digits")
        width = len(flat) // rows
        if width > 1 and any(not 0 <= d < OUTPUT_BASE for d in flat):
            raise CircuitError(f"circuit output: digit rows {flat}: a digit is outside [0, {OUTPUT_BASE - 1}]")
        trade, invalid_mm, invalid_rm, volume, b_off, joint = (
            sum(d * OUTPUT_BASE**j for j, d in enumerate(flat[k * width : (k + 1) * width])) for k in range(rows)
        )
        if trade not in (0, 1) or invalid_mm not in (0, 1) or invalid_rm not in (0, 1):
            raise CircuitError(
                f"circuit output flags trade = {trade}, invalid_mm = {invalid_mm}, invalid_rm = {invalid_rm}: not 0/1")
        if not trade:
            if (volume, b_off, joint) != (0, 0, 0):
                raise CircuitError(f"circuit output: no trade but volume = {volume}: inconsistent output")
            return cls(False, bool(invalid_mm), bool(invalid_rm), 0, 0, 0, 0)
        if invalid_mm or invalid_rm:
            raise CircuitError("circuit output: trade = 1 with an invalid flag set: inconsistent output")
        joint -= 1  # the J row carries J' = J + 1 of the winner (the survivor flag folded into the argmax)
        if volume <= 0 or joint < 0 or joint % volume:
            raise CircuitError(f"circuit output: volume = {volume}, joint profit = {joint}: inconsistent output")
        return cls(True, False, False, volume, b_off, b_off + joint // volume, joint)

    def instruction(self, terms: MarketTerms) -> Instruction:
        """The contract's instruction in bp (adds ``terms.base_rate`` back); no trade when invalid."""
        if not self.trade or self.invalid:
            return NO_TRADE
        r_mm = terms.base_rate + self.r_mm_offset
        r_rm = terms.base_rate + self.r_rm_offset
        return Instruction(True, self.volume, r_mm, r_rm, r_mm + r_rm, self.joint_profit)


def build_inputset(shape: CircuitShape, *, samples: int = 60, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Structured extremes plus random reports: concrete sizes every value from what the inputset produces.

    The extremes reach every intermediate's true range: steps and spreads of ±max_offset, hurdle
    differences of ±max_hurdle, every feasible-prefix length, ties, and the largest joint profits; wide
    tournament values are also pinned by ``fhe.hint``.
    """
    rng = np.random.default_rng(seed)
    n, m = shape.grid, shape.max_offset
    hmax = (1 << shape.hurdle_bits) - 1
    up = np.arange(n + 1)
    out: list[tuple[np.ndarray, np.ndarray]] = []

    def add(b, a, h_mm, h_rm):
        out.append((np.append(np.asarray(b, dtype=np.int64), h_mm), np.append(np.asarray(a, dtype=np.int64), h_rm)))

    zeros, fulls = np.zeros(n + 1, dtype=np.int64), np.full(n + 1, m, dtype=np.int64)
    alternating = np.where(up % 2 == 0, 0, m)
    add(zeros, fulls, 0, 0)
    add(fulls, zeros, hmax, hmax)
    add(zeros, fulls, 0, hmax)
    add(zeros, fulls, hmax, 0)
    add(alternating, m - alternating, 0, hmax)
    add(m - alternating, alternating, hmax, 0)
    add(up, m - up, 0, 0)  # strictly monotone, widest spreads: the largest valid J
    add(m - n + up, n - up, 0, 0)  # strictly monotone, most negative spreads
    for k in range(n + 1):  # feasible prefixes of every length, wide spreads
        b = up.copy()
        a = m - up
        a[k + 1 :] = b[k + 1 :] + 1 + (n - up[k + 1 :])  # spread collapses after k (stays strictly monotone)
        a = np.minimum(a, m)
        add(b, np.maximum.accumulate(a[::-1])[::-1], rng.integers(0, hmax + 1), rng.integers(0, hmax + 1))
    for _ in range(samples):
        kind = rng.random()
        if kind < 0.5:  # strictly monotone
            b = np.sort(rng.choice(m + 1, n + 1, replace=False))
            a = np.sort(rng.choice(m + 1, n + 1, replace=False))[::-1]
        elif kind < 0.75:  # weakly monotone: runs of equal values
            b = np.sort(rng.choice(rng.integers(1, n + 2), n + 1) * (m // (n + 1)))
            a = m - np.sort(rng.choice(rng.integers(1, n + 2), n + 1) * (m // (n + 1)))
        else:
            b = rng.integers(0, m + 1, n + 1)
            a = rng.integers(0, m + 1, n + 1)
        add(b, a, rng.integers(0, hmax + 1), rng.integers(0, hmax + 1))
    return out

