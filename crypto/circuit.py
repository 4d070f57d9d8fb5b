"""The contract's selection rule (docs/MODEL.md §5) as a TFHE circuit, compiled with concrete-python.

Design (inputs, outputs, the survivor test, the radix encoding: every encrypted integer at most 4 bits, borrow
chains, digit tournament, one-hot output), measured cost and design history: docs/CIRCUIT.md. The plaintext
thresholds: :mod:`market.no_cut`. Each building block's docstring gives its PBS cost.

Importing this module does not import concrete (2-3 s, ~850 MB with torch): every concrete import is local.
"""
from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crypto.encoding import canonical_bytes, digest, to_hex
from crypto.errors import CryptoError
from market.selection import NO_TRADE, HurdleMode, Instruction
from market.terms import MarketTerms

__all__ = [
    "DEFAULT_FORMULATION",
    "FORMULATIONS",
    "RADIX_BITS",
    "TLU_BITS",
    "CircuitError",
    "CircuitShape",
    "CostReport",
    "SelectionCircuit",
    "SelectionOutput",
    "build_inputset",
    "pack_report",
    "rate_layout",
    "circuit_cache_key",
]

TLU_BITS = 4  # widest table lookup in the circuit (see module docstring for the measurements)
TLU_MAX = (1 << TLU_BITS) - 1  # largest lookup input; also the most 0/1 bits summed before one any/all lookup
FORMULATIONS = ("radix",)  # the others (tournament, pairwise, limbs) were removed: figures in bench_fhe.json
DEFAULT_FORMULATION = "radix"
STRATEGIES = ("mono", "multi")
ARTIFACT_NAME = "server.zip"
OUTPUT_FIELDS = ("trade", "invalid", "volume", "b_offset", "joint_profit")


class CircuitError(CryptoError, ValueError):
    """Bad circuit input (names the field and value) or a blob that fails its digest check."""


RULE_VERSION = "weak-monotone-1"  # the rule and input encoding: flat steps, per-Q survivor thresholds (issue 14)


def circuit_cache_key(terms: MarketTerms, formulation: str = DEFAULT_FORMULATION, strategy: str = "mono") -> bytes:
    """SHA-256 of the canonical terms, formulation, rule version and parameter strategy: the cache key of a
    compiled circuit (an artifact of another rule or input encoding can never be loaded from the same folder)."""
    body: dict[str, Any] = dict(terms.as_dict()) | {"formulation": formulation, "parameter_strategy": strategy,
                                                    "rule": RULE_VERSION}
    return digest(canonical_bytes(body, name="terms"))


@dataclass(frozen=True)
class CircuitShape:
    """The compile-time parameters the circuit depends on (derived from :class:`MarketTerms`)."""

    grid: int
    rate_bits: int
    hurdle_bits: int
    hurdle_factor: int  # c: 2 for margin (s/2 >= h), 1 for spread (s >= h)
    strategy: str = "mono"  # concrete parameter_selection_strategy

    formulation = DEFAULT_FORMULATION  # the only one (a class constant: it names the cache key and cost report)

    @classmethod
    def from_terms(cls, terms: MarketTerms, formulation: str = DEFAULT_FORMULATION, strategy: str = "mono") -> "CircuitShape":
        if formulation not in FORMULATIONS:
            raise CircuitError(f"formulation = {formulation!r}: must be one of {', '.join(FORMULATIONS)}")
        if strategy not in STRATEGIES:
            raise CircuitError(f"strategy = {strategy!r}: must be one of {', '.join(STRATEGIES)}")
        from market.limits import MAX_RATE_BITS

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
    def report_length(self) -> int:
        """Length of one packed report (``pack_report``): the digits of N + 1 offsets and of N thresholds."""
        return (2 * self.grid + 1) * len(self.rate_layout)

    @property
    def threshold_top_bound(self) -> int:
        """Largest top digit of a packed threshold τ <= max_offset + 1 (one above any spread)."""
        return (self.max_offset + 1) >> _offsets(self.rate_layout)[-1]

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


# --- building blocks (run on concrete tracers; each docstring gives its PBS cost) ----------------------------


def _fhe():
    from concrete import fhe  # local: importing crypto must not import concrete/torch

    return fhe


def _lut(table: list[int]):
    return _fhe().LookupTable(table)


def _fold_bits(bits: list, combine: Callable):
    """Reduce encrypted 0/1 scalars to one: ``combine(group)`` turns each group of at most :data:`TLU_MAX` bits
    (their sum fits one 4-bit lookup) into one bit, level by level; a lone bit passes through unchanged."""
    while len(bits) > 1:
        groups = [bits[i : i + TLU_MAX] for i in range(0, len(bits), TLU_MAX)]
        bits = [combine(group) if len(group) > 1 else group[0] for group in groups]
    return bits[0]


def _any(bits: list):
    """OR of encrypted 0/1 scalars: sums of at most 15 bits, each followed by one 4-bit lookup."""
    return _fold_bits(bits, lambda group: _hint(_sum(group), len(group).bit_length()) > 0)


def _hint(value, bits: int):
    """Pin the width of ``value`` to at least ``bits``: inputsets rarely reach every intermediate's extreme,
    and a value beyond its assigned width overflows silently."""
    return _fhe().hint(value, bit_width=bits)


def _sum(items: list):
    """Integer sum; ``× 1`` first because concrete sizes ``bool + bool`` as a logical OR (TOOLING.md)."""
    total = items[0] * 1
    for item in items[1:]:
        total = total + item * 1
    return total


# --- formulation "radix": every encrypted integer is a digit of at most TLU_BITS bits ------------------------

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


def _offsets(layout) -> list[int]:
    return [int(v) for v in np.cumsum((0,) + tuple(layout))[:-1]]


def _to_digits(value: int, layout) -> list[int]:
    """``value`` as digits of ``layout`` (least significant first); the caller has range-checked it."""
    out = []
    for width in layout:
        out.append(value & ((1 << width) - 1))
        value >>= width
    return out


def _lut16(table: list[int]):
    """A 4-bit lookup table (entries beyond ``table`` are never reached: their inputs are range-bounded)."""
    return _lut(list(table) + [0] * ((1 << TLU_BITS) - len(table)))


def _tlu_in(value, bound: int):
    """A lookup input whose value lies in ``[0, bound]``: checked against the 4-bit budget and pinned to 4 bits
    (inputsets rarely reach every intermediate's extreme; every lookup input is non-negative by construction)."""
    if not 0 <= bound <= TLU_MAX:
        raise AssertionError(f"radix: a lookup input reaches {bound} > {TLU_MAX}")  # a bug in the layout, not input
    return _hint(value, TLU_BITS)


def _flagged(value, flag, bound: int):
    """The lookup input ``2·value + flag`` (``value`` in ``[0, bound]``, ``flag`` 0/1): the flag weighs 1 instead
    of 8 in ``value + 8·flag`` [decided; measured: concrete picked the same 4-bit parameters either way at
    N = 16, so this is noise margin, not speed]."""
    return _tlu_in(2 * value + flag, 2 * bound + 1)


def _per_element(tables: list[list[int]]):
    """One 4-bit table per vector element (e.g. per grid point Q: the public Q lives inside the table)."""
    fhe = _fhe()
    return fhe.LookupTable([_lut16(t) for t in tables])


def _borrow_chain(xs: list, ys: list, layout, borrow_in=None, digits: bool = False):
    """Compare ``x`` and ``y`` given as digit columns (``xs[i]``, ``ys[i]`` for digit ``i`` of ``layout``).

    Digit ``i``: ``t = x_i − y_i − β + 2**w`` in ``[0, 2**(w+1))``; the borrow ``β' = [t < 2**w]`` is one lookup,
    the difference digit ``t mod 2**w = t + 2**w·β' − 2**w`` is linear (only if ``digits``; not for the top digit;
    [measured] its larger noise norm left concrete's parameters unchanged). Returns the
    borrow out of the top digit (``1`` iff ``x − y − borrow_in < 0``) unless ``digits``: then
    ``(low digits of x − y, the top's t offset by 2**w_top, its bound)`` (no lookup on the top digit).
    ``ys[i]`` may be ``None`` (a zero digit)."""
    borrow = borrow_in
    low = []
    last = len(layout) - 1
    for i, width in enumerate(layout):
        base = 1 << width
        t = xs[i] + base if ys[i] is None else xs[i] - ys[i] + base
        if borrow is not None:
            t = t - borrow
        if digits and i == last:
            return low, t, 2 * base - 1
        t = _tlu_in(t, 2 * base - 1)
        borrow = _lut16([1 if v < base else 0 for v in range(2 * base)])[t]
        if digits:  # t mod 2**w = (t + 2**w·β') − 2**w, the sum in [2**w, 2**(w+1)): linear, no lookup
            low.append(t + base * borrow - base)
    return borrow


def _all_ones(bits: list):
    """``1`` iff every encrypted 0/1 scalar in ``bits`` is 1: sums of at most 15 bits, one lookup each."""
    return _fold_bits(bits, lambda g: _lut16([1 if v == len(g) else 0 for v in range(len(g) + 1)])[_tlu_in(_sum(g), len(g))])


def _normalize(columns: list[list[tuple[Any, int]]], bases: list[int]) -> list[tuple[Any, int]]:
    """Column sums -> digits: ``columns[c]`` holds non-negative terms ``(value, bound)`` of weight
    ``prod(bases[:c])``; returns one ``(digit, bound)`` per column, ``digit < bases[c]`` except in the last
    column, which is summed as it is (the caller knows the total fits there).

    Terms are summed in groups whose bound stays <= 15 (free while the bound stays below the base); a group
    reaching the base costs a digit lookup and a carry lookup into the next column (a Wallace-style reduction)."""
    columns = [list(col) for col in columns]
    out: list[tuple[Any, int]] = []
    for c, base in enumerate(bases):
        terms = sorted(columns[c], key=lambda t: t[1])
        if c == len(bases) - 1:
            out.append((_sum([t[0] for t in terms]), sum(t[1] for t in terms)) if terms else (None, 0))
            continue
        while terms and not (len(terms) == 1 and terms[0][1] < base):
            count, bound = 0, 0
            while count < len(terms) and bound + terms[count][1] <= TLU_MAX:  # longest prefix fitting a lookup
                bound += terms[count][1]
                count += 1
            if count == 1 and bound < base:  # the next term is too large to join: reduce it alone
                group, terms = [terms[1]], [terms[0]] + terms[2:]
                bound = group[0][1]
            else:
                group, terms = terms[:count], terms[count:]
            total = _sum([t[0] for t in group])
            if bound < base:  # still a digit: no lookup
                terms = sorted(terms + [(total, bound)], key=lambda t: t[1])
                continue
            x = _tlu_in(total, bound)
            carry = _lut16([v // base for v in range(bound + 1)])[x]
            # a 0/1 carry gives the digit linearly: x − base·carry (one lookup saved)
            digit = x - base * carry if bound < 2 * base else _lut16([v % base for v in range(bound + 1)])[x]
            terms = sorted(terms + [(digit, base - 1)], key=lambda t: t[1])
            columns[c + 1].append((carry, bound // base))
        out.append(terms[0] if terms else (None, 0))
    return out


def _at_least(s_low: list, s_top, s_top_bound: int, t_digits: list, t_top_bound: int, layout, valid=None):
    """``1`` where the spread ``s`` (low digits ``s_low``, top kept as ``s_top + 2**w_top``) is >= the threshold
    ``t`` (digits ``t_digits`` of ``layout``, top digit in ``[0, t_top_bound]``), times ``valid`` if given.

    A borrow chain over the low digits (one PBS each), then one lookup on the top:
    ``v = s_top − t_top − γ + t_top_bound + 1 >= 0`` and ``s >= t`` iff ``v >= 2**w_top + t_top_bound + 1``."""
    top = len(layout) - 1
    gamma = _borrow_chain(s_low, t_digits[:top], layout[:top]) if top else None
    v = s_top - t_digits[top] + (t_top_bound + 1)
    v = v - gamma if gamma is not None else v
    v_bound = s_top_bound + t_top_bound + 1
    threshold = (1 << layout[top]) + t_top_bound + 1
    span = v_bound + 1
    if valid is not None and 2 * span - 1 <= TLU_MAX:
        return _lut16([1 if x % 2 == 1 and x >> 1 >= threshold else 0 for x in range(2 * span)])[
            _flagged(v, valid, v_bound)]
    passes = _lut16([1 if x >= threshold else 0 for x in range(span)])[_tlu_in(v, v_bound)]
    if valid is None:
        return passes
    return _lut16([0, 0, 0, 1])[_tlu_in(passes + 2 * valid, 3)]


def _radix(shape: "CircuitShape") -> Callable:
    """Formulation "radix": the rule on base-8 digits, so that no encrypted integer is wider than 4 bits and
    every PBS runs with the small parameters of a 4-bit lookup (see the module docstring for the design)."""
    n = shape.grid
    layout = shape.rate_layout
    rd = len(layout)
    offsets = _offsets(layout)
    top = rd - 1
    t_top_bound = shape.threshold_top_bound
    jd = shape.joint_digits
    volumes = list(range(1, n + 1))

    def rule(mm, rm):
        fhe = _fhe()
        b = mm[0 : (n + 1) * rd].reshape((n + 1, rd))
        a = rm[0 : (n + 1) * rd].reshape((n + 1, rd))
        tau_mm = mm[(n + 1) * rd : (2 * n + 1) * rd].reshape((n, rd))  # τ_mm(Q), Q = 1..N (market.no_cut)
        tau_rm = rm[(n + 1) * rd : (2 * n + 1) * rd].reshape((n, rd))

        # 1. neighbour comparisons, 2N chains each way: strict steps b̂_q < b̂_(q+1), â_(q+1) < â_q give
        # attainability; a reversed step (b̂_(q+1) < b̂_q or â_q < â_(q+1)) makes the report invalid.
        lower = np.concatenate((b[0:n], a[1 : n + 1]))
        upper = np.concatenate((b[1 : n + 1], a[0:n]))
        lo_cols, up_cols = [lower[:, i] for i in range(rd)], [upper[:, i] for i in range(rd)]
        strict = _borrow_chain(lo_cols, up_cols, layout)
        reversed_step = _borrow_chain(up_cols, lo_cols, layout)
        invalid = _any([reversed_step[i] for i in range(2 * n)])
        valid = 1 - invalid

        # 2. spreads s(Q) = â_Q − b̂_Q, Q = 1..N: low digits normalised, the top kept as t = s_top + 2**w_top.
        s_low, s_top, s_top_bound = _borrow_chain(
            [a[:, i][1 : n + 1] for i in range(rd)], [b[:, i][1 : n + 1] for i in range(rd)], layout,
            digits=True,
        )
        # 3. survivors (market.no_cut, [derived]): Q attainable, s(Q) >= τ_mm(Q), s(Q) >= τ_rm(Q), reports valid.
        pass_mm = _at_least(s_low, s_top, s_top_bound, [tau_mm[:, i] for i in range(rd)], t_top_bound, layout,
                            valid=valid)
        pass_rm = _at_least(s_low, s_top, s_top_bound, [tau_rm[:, i] for i in range(rd)], t_top_bound, layout)
        if n > 1:  # Q = N is always attainable; Q < N needs a strict step on both sides
            count = pass_mm[0 : n - 1] * 1 + pass_rm[0 : n - 1] * 1 + strict[1:n] * 1 + strict[n + 1 : 2 * n] * 1
            inner = _lut16([1 if v == 4 else 0 for v in range(5)])[_tlu_in(count, 4)]
            last = _lut16([0, 0, 1])[_tlu_in(pass_mm[n - 1 : n] * 1 + pass_rm[n - 1 : n] * 1, 2)]
            feasible = np.concatenate((inner, last))
        else:
            feasible = _lut16([0, 0, 1])[_tlu_in(pass_mm * 1 + pass_rm * 1, 2)]
        # the survivors need not be a prefix once steps are flat: "some Q survives" is an OR over all Q
        trade = _any([feasible[i] for i in range(n)])

        # 4. J'(Q) = f·(Q·s(Q) + 1) as base-8 digits: per digit i of s one table per Q on 2·digit + f gives each
        # octal digit of f·Q·s_i·2**offset_i (the public Q multiplies inside the table: no noise growth); the
        # + f makes every survivor's J' >= 1 > 0 = every other leaf's, so the argmax needs no feasibility flag.
        jcols: list[list] = [[] for _ in range(jd)]
        jcols[0].append((feasible, 1))
        for i, width in enumerate(layout):
            base = 1 << width
            if i < top:
                x, x_bound, zero_at = s_low[i], base - 1, 0
            else:  # the top is kept offset by 2**w (t = s_top + 2**w); f = 1 implies s_top >= 0
                x, x_bound, zero_at = s_top, s_top_bound, base
            col0, shift = divmod(offsets[i], RADIX_BITS)
            x = _flagged(x, feasible, x_bound)
            for j in range(jd - col0):
                tables = [[((q * ((entry >> 1) - zero_at) << shift) >> (RADIX_BITS * j)) % OUTPUT_BASE
                           if entry % 2 == 1 and (entry >> 1) >= zero_at else 0 for entry in range(2 * x_bound + 2)]
                          for q in volumes]
                bound = max(max(table) for table in tables)
                if bound:
                    jcols[col0 + j].append((_per_element(tables)[x], bound))
        joint = [d for d, _ in _normalize(jcols, [OUTPUT_BASE] * jd)]
        leaves = np.concatenate(tuple(_hint(d, TLU_BITS).reshape((n, 1)) for d in joint), axis=1)  # (N, jd)

        # 5. tournament on J' digits: the right (larger Q) subtree's winner is kept iff J'_R − J'_L >= 0 (ties
        # to the larger Q; a non-survivor has J' = 0 and never beats a survivor).
        level = leaves
        groups = [[q] for q in range(n)]  # leaves under each position of the level
        won: list[list] = [[] for _ in range(n)]  # per leaf: its "won this node" bits
        while len(groups) > 1:
            m = len(groups)
            k = m // 2
            left, right = level[0 : 2 * k : 2], level[1 : 2 * k : 2]
            left_wins = _borrow_chain([right[:, i] for i in range(jd)], [left[:, i] for i in range(jd)],
                                      (RADIX_BITS,) * jd)
            lw = left_wins.reshape((k, 1))
            kept = (_lut16([v >> 1 if v % 2 == 1 else 0 for v in range(16)])[_flagged(left, lw, 7)]
                    + _lut16([v >> 1 if v % 2 == 0 else 0 for v in range(16)])[_flagged(right, lw, 7)])
            for p in range(k):
                for q in groups[2 * p]:
                    won[q].append(left_wins[p])
                for q in groups[2 * p + 1]:
                    won[q].append(1 - left_wins[p])
            new_groups = [groups[2 * p] + groups[2 * p + 1] for p in range(k)]
            if m % 2:
                kept = np.concatenate((kept, level[m - 1 : m]))
                new_groups.append(groups[m - 1])
            level, groups = kept, new_groups
        j_sel = [level[0, i] for i in range(jd)]  # J' of the winner: J + 1 when trade, 0 when none survives

        # 6. one-hot winner (won every node on its path, and trade): Q digits and masked b̂ digits summed.
        counts = fhe.array([_sum(won[q] + [trade]) for q in range(n)])
        depth = [len(won[q]) + 1 for q in range(n)]
        count_in = _tlu_in(counts, max(depth))
        winner = _per_element([[1 if v == depth[q] else 0 for v in range(depth[q] + 1)] for q in range(n)])[count_in]
        q_digits = [
            np.sum(_per_element([[((q + 1) >> (RADIX_BITS * j)) % OUTPUT_BASE if v == depth[q] else 0
                                  for v in range(depth[q] + 1)] for q in range(n)])[count_in])
            for j in range(shape.volume_digits)
        ]
        bcols: list[list] = [[] for _ in range(jd)]
        for i, width in enumerate(layout):
            col, shift = divmod(offsets[i], RADIX_BITS)
            masked = _lut16([(v >> 1) << shift if v % 2 == 1 else 0 for v in range(16)])[
                _flagged(b[:, i][1 : n + 1], winner, 7)]
            bcols[col].append(np.sum(masked))
        b_sel = [_sum(col) if col else None for col in bcols]

        zero = trade * 0  # an encrypted 0 (fhe.array needs tracers, not Python ints)

        def row(digits):
            return [d if d is not None else zero for d in digits] + [zero] * (jd - len(digits))

        return fhe.array([row([trade]), row([invalid]), row(q_digits), row(b_sel), row(j_sel)])

    return rule


# --- inputs, outputs -----------------------------------------------------------------------------------------


def pack_report(shape: CircuitShape, side: str, offsets, hurdle) -> np.ndarray:
    """One dealer's circuit input after range checks: the digits of ``offset_0 .. offset_N``, then the digits of
    its survivor thresholds ``τ(Q) = max(c·hurdle, σ(Q))``, Q = 1..N (:func:`market.no_cut.survivor_thresholds`).

    Raises :class:`CircuitError` naming the field, index and value before anything is encrypted: values
    beyond the compiled bit widths would overflow silently inside the circuit. Monotonicity is *not*
    checked here: the circuit checks it and raises its ``invalid`` flag.

    [decided] τ is a function of this one report (schedule and hurdle), so it is computed here, where the
    report is encoded, in exact integers: the circuit then applies the whole D2 filter with two comparisons
    per Q instead of O(N²) encrypted products. The circuit certifies the schedule's monotonicity itself but
    takes τ as encoded (as it takes every digit as encoded). τ is clamped to ``max_offset + 1``: no spread
    reaches it, so the comparison is unchanged.
    """
    from market.no_cut import survivor_thresholds

    field_name = {"mm": "b_offsets", "rm": "a_offsets"}.get(side)
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
    values = [int(v) for v in items]
    mode = "margin" if shape.hurdle_factor == 2 else "spread"
    tau = np.minimum(survivor_thresholds(values, int(hurdle), side, mode)[1:], shape.max_offset + 1)
    layout = shape.rate_layout
    digits = [d for v in values for d in _to_digits(v, layout)]
    digits += [d for t in tau.tolist() for d in _threshold_digits(int(t), layout)]
    return np.array(digits, dtype=np.int64)


def _threshold_digits(value: int, layout) -> list[int]:
    """``value <= 2**bits`` as digits of ``layout``; the top digit keeps everything above (up to ``2**w_top``)."""
    out = _to_digits(value, layout[:-1])
    return out + [value >> _offsets(layout)[-1]]


@dataclass(frozen=True)
class SelectionOutput:
    """The decrypted circuit output, as rate offsets (add the base rate with :meth:`instruction`)."""

    trade: bool
    invalid: bool
    volume: int
    r_mm_offset: int
    r_rm_offset: int
    joint_profit: int

    @classmethod
    def from_values(cls, values) -> "SelectionOutput":
        """From the circuit's raw ``[trade, invalid, Q_sel, b̂_sel, J_sel]``; checks internal consistency.

        Formulation "radix" returns five rows of base-8 digits (least significant first, shape ``(5, D)``, or
        flattened); a row's value is ``Σ digit_j·8**j``. Five plain values are the ``D = 1`` case."""
        flat = [int(v) for v in np.asarray(values).reshape(-1)]
        if not flat or len(flat) % len(OUTPUT_FIELDS):
            raise CircuitError(f"circuit output: {len(flat)} values, expected 5 rows of digits")
        width = len(flat) // len(OUTPUT_FIELDS)
        if width > 1 and any(not 0 <= d < OUTPUT_BASE for d in flat):
            raise CircuitError(f"circuit output: digit rows {flat}: a digit is outside [0, {OUTPUT_BASE - 1}]")
        trade, invalid, volume, b_off, joint = (
            sum(d * OUTPUT_BASE**j for j, d in enumerate(flat[k * width : (k + 1) * width])) for k in range(5)
        )
        if trade not in (0, 1) or invalid not in (0, 1):
            raise CircuitError(f"circuit output flags trade = {trade}, invalid = {invalid}: not 0/1")
        if not trade:
            if (volume, b_off, joint) != (0, 0, 0):
                raise CircuitError(f"circuit output: no trade but volume = {volume}: inconsistent output")
            return cls(False, bool(invalid), 0, 0, 0, 0)
        if invalid:
            raise CircuitError("circuit output: trade = 1 with invalid = 1: inconsistent output")
        joint -= 1  # the J row carries J' = J + 1 of the winner (the survivor flag folded into the argmax)
        if volume <= 0 or joint < 0 or joint % volume:
            raise CircuitError(f"circuit output: volume = {volume}, joint profit = {joint}: inconsistent output")
        return cls(True, bool(invalid), volume, b_off, b_off + joint // volume, joint)

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


# --- compiled circuit, cache, evaluation ---------------------------------------------------------------------

BLOB_MAGIC = b"RMFHE1"


def wrap_blob(kind: str, payload: bytes) -> bytes:
    """``magic ‖ kind(16) ‖ SHA-256(payload) ‖ payload``: a blob that checks itself before deserializing."""
    tag = kind.encode().ljust(16, b"\0")
    return BLOB_MAGIC + tag + digest(payload) + payload


def unwrap_blob(kind: str, blob: bytes, *, expected_digest: bytes | None = None) -> bytes:
    """Check the blob (and optionally its published SHA-256) before any native deserializer sees it."""
    if not isinstance(blob, (bytes, bytearray)):
        raise CircuitError(f"{kind}: expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if expected_digest is not None and digest(blob) != expected_digest:
        raise CircuitError(
            f"{kind}: SHA-256 {to_hex(digest(blob))[:16]}… differs from the published {to_hex(expected_digest)[:16]}…"
        )
    head = len(BLOB_MAGIC) + 16 + 32
    if len(blob) < head or not blob.startswith(BLOB_MAGIC):
        raise CircuitError(f"{kind}: not a repo-market FHE blob ({len(blob)} bytes, bad header)")
    tag = blob[len(BLOB_MAGIC) : len(BLOB_MAGIC) + 16].rstrip(b"\0").decode(errors="replace")
    if tag != kind:
        raise CircuitError(f"{kind}: blob holds a {tag!r}, not a {kind!r}")
    payload = blob[head:]
    if digest(payload) != blob[len(BLOB_MAGIC) + 16 : head]:
        raise CircuitError(f"{kind}: payload does not match its embedded SHA-256 (truncated or corrupt)")
    return payload


def _configuration(strategy: str = "mono", simulation: bool = False):
    fhe = _fhe()
    # [decided] mono parameters: one parameter set for the whole circuit keeps evaluation keys ~100-200 MB;
    # replay was checked byte-identical with it. Parallel loops stay on (turning them off halves speed).
    # Overflow detection in simulation is off: the bit extraction deliberately shifts bits out (false alarms).
    return fhe.Configuration(
        parameter_selection_strategy=strategy,
        show_progress=False,
        fhe_simulation=simulation,
        fhe_execution=not simulation,
    )


@dataclass
class CostReport:
    """Static costs of a compiled circuit plus the timings a caller measured (seconds)."""

    grid: int
    rate_bits: int
    hurdle_bits: int
    hurdle_mode: str
    formulation: str
    strategy: str
    pbs_count: int
    tlu_bits: int
    joint_bits: int
    max_integer_bits: int | None
    bootstrap_key_bytes: int
    keyswitch_key_bytes: int
    input_ciphertext_bytes: int
    output_ciphertext_bytes: int
    global_p_error: float
    complexity: float
    artifact_bytes: int
    timings: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    peak_rss_bytes: int | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["peak_rss_bytes"] = peak_rss_bytes()
        return out


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class SelectionCircuit:
    """The compiled selection circuit of one set of market terms.

    The server artifact (``server.zip``) is cached under ``cache_dir/<terms digest hex>/``; it is a public
    blob: with the evaluation keys and two input ciphertexts anyone can :meth:`evaluate` (and replay).
    """

    def __init__(self, terms: MarketTerms, shape: CircuitShape, artifact_path: Path | None, *, compiled=None,
                 compile_seconds: float | None = None):
        self.terms = terms
        self.shape = shape
        self.artifact_path = Path(artifact_path) if artifact_path is not None else None
        self.artifact_bytes = self.artifact_path.read_bytes() if artifact_path is not None else b""
        self.artifact_digest = digest(self.artifact_bytes) if artifact_path is not None else b""
        self.compile_seconds = compile_seconds
        self._compiled = compiled
        self._simulator = None
        self._server = None

    def __repr__(self) -> str:
        return (
            f"SelectionCircuit(N={self.shape.grid}, rate_bits={self.shape.rate_bits}, "
            f"mode={self.terms.hurdle_mode.value}, formulation={self.shape.formulation}, "
            f"artifact={to_hex(self.artifact_digest)[:16] or 'none'}…)"
        )

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def for_terms(cls, terms: MarketTerms, cache_dir: Path, *, formulation: str = DEFAULT_FORMULATION,
                  strategy: str = "mono") -> "SelectionCircuit":
        """Load the cached server artifact of ``terms`` or compile it (once per terms) and cache it."""
        shape = CircuitShape.from_terms(terms, formulation, strategy)
        folder = Path(cache_dir) / to_hex(circuit_cache_key(terms, formulation, strategy))
        artifact = folder / ARTIFACT_NAME
        if artifact.is_file():
            return cls(terms, shape, artifact)
        started = time.perf_counter()
        compiled = _compile(shape, simulation=False)
        seconds = time.perf_counter() - started
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            staged = Path(tmp) / ARTIFACT_NAME
            compiled.server.save(staged)
            (Path(tmp) / "terms.json").write_text(
                json.dumps(terms.as_dict() | {"formulation": formulation, "parameter_strategy": strategy,
                                              "rule": RULE_VERSION})
            )
            os.replace(Path(tmp) / "terms.json", folder / "terms.json")
            os.replace(staged, artifact)  # atomic: a concurrent reader sees the whole artifact or none
        return cls(terms, shape, artifact, compiled=compiled, compile_seconds=seconds)

    @classmethod
    def simulation_only(cls, terms: MarketTerms, *, formulation: str = DEFAULT_FORMULATION) -> "SelectionCircuit":
        """A circuit that can only :meth:`simulate` (no FHE artifact is compiled): for wide parity sweeps."""
        return cls(terms, CircuitShape.from_terms(terms, formulation), None)

    @property
    def server(self):
        if self.artifact_path is None:
            raise CircuitError("this SelectionCircuit was built with simulation_only(): no FHE artifact")
        if self._server is None:
            self._server = _fhe().Server.load(self.artifact_path)
        return self._server

    @property
    def client_specs(self):
        return self.server.client_specs

    @property
    def function_name(self) -> str:
        return self.server.program_info.get_circuits()[0].get_name()

    # evaluator side ----------------------------------------------------------------------------------------

    def evaluate(self, evaluation_keys: bytes, ct_mm: bytes, ct_rm: bytes, *, digests: dict | None = None) -> bytes:
        """Run the circuit on public blobs only: evaluation keys + two input ciphertexts -> output blob.

        Every blob is hash-checked (embedded SHA-256, and against ``digests`` — keys ``"evaluation_keys"``,
        ``"mm"``, ``"rm"`` — when given, e.g. the digests posted on chain) before it is deserialized.
        Byte-identical in every process: it refuses to run unless the fixed FFT plan is loaded
        (:mod:`crypto.fhe_runtime`; tests/crypto/test_replay_across_processes.py).
        """
        from crypto.fhe_runtime import require_fixed_plan

        require_fixed_plan()  # an output under a timed FFT plan could not be replayed byte for byte elsewhere
        fhe = _fhe()
        digests = digests or {}
        keys = unwrap_blob("evaluation_keys", evaluation_keys, expected_digest=digests.get("evaluation_keys"))
        mm = unwrap_blob("ciphertext_mm", ct_mm, expected_digest=digests.get("mm"))
        rm = unwrap_blob("ciphertext_rm", ct_rm, expected_digest=digests.get("rm"))
        result = self.server.run(
            fhe.Value.deserialize(mm),
            fhe.Value.deserialize(rm),
            evaluation_keys=fhe.EvaluationKeys.deserialize(keys),
        )
        return wrap_blob("ciphertext_out", result.serialize())

    # simulation (no encryption) ------------------------------------------------------------------------------

    def simulate(self, mm_offsets, h_mm, rm_offsets, h_rm) -> SelectionOutput:
        """The same circuit graph without encryption (milliseconds): for wide parity tests."""
        mm = pack_report(self.shape, "mm", mm_offsets, h_mm)
        rm = pack_report(self.shape, "rm", rm_offsets, h_rm)
        return SelectionOutput.from_values(self.simulate_packed(mm, rm))

    def simulate_packed(self, mm: np.ndarray, rm: np.ndarray) -> np.ndarray:
        if self._simulator is None:
            self._simulator = _compile(self.shape, simulation=True)
        return np.asarray(self._simulator.simulate(mm, rm))

    # cost report ----------------------------------------------------------------------------------------------

    def cost_report(self) -> CostReport:
        """Static costs from the artifact (PBS count, key and ciphertext sizes, p_error, complexity)."""
        server = self.server
        name = self.function_name
        compiled = self._compiled
        return CostReport(
            grid=self.shape.grid,
            rate_bits=self.shape.rate_bits,
            hurdle_bits=self.shape.hurdle_bits,
            hurdle_mode=self.terms.hurdle_mode.value,
            formulation=self.shape.formulation,
            strategy=self.shape.strategy,
            pbs_count=int(server.programmable_bootstrap_count(name)),
            tlu_bits=TLU_BITS,
            joint_bits=self.shape.joint_bits,
            max_integer_bits=int(compiled.graph.maximum_integer_bit_width()) if compiled is not None else None,
            bootstrap_key_bytes=int(server.size_of_bootstrap_keys),
            keyswitch_key_bytes=int(server.size_of_keyswitch_keys),
            input_ciphertext_bytes=int(server.size_of_inputs(name)),
            output_ciphertext_bytes=int(server.size_of_outputs(name)),
            global_p_error=float(server.global_p_error),
            complexity=float(server.complexity),
            artifact_bytes=len(self.artifact_bytes),
            timings={"compile": self.compile_seconds} if self.compile_seconds is not None else {},
        )


def _compile(shape: CircuitShape, *, simulation: bool):
    fhe = _fhe()
    # every lookup input is hinted to its proven 4-bit bound (_tlu_in), so 60 random samples suffice
    inputset = [(pack_report(shape, "mm", mm[:-1], int(mm[-1])), pack_report(shape, "rm", rm[:-1], int(rm[-1])))
                for mm, rm in build_inputset(shape, samples=60)]
    compiler = fhe.Compiler(_radix(shape), {"mm": "encrypted", "rm": "encrypted"})
    return compiler.compile(inputset, _configuration(shape.strategy, simulation))
