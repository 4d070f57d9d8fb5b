"""The contract's selection rule (MODEL.md §5) as a TFHE circuit, compiled with concrete-python.

What the circuit computes
-------------------------
Inputs, one encrypted vector per dealer so the custodian encrypts each report on its own:

* ``mm = [b̂_0 .. b̂_N, h_mm]`` — MM's schedule as offsets from the market's base rate, then BDmm's hurdle;
* ``rm = [â_0 .. â_N, h_rm]`` — RM's schedule as offsets, then BDrm's hurdle.

(formulation "radix": every value as its digits, see below; :func:`pack_report` builds either form.)

Output (the only value ever decrypted), five integers ``[trade, invalid, Q_sel, b̂[Q_sel], J(Q_sel)]``
(formulation "radix": five rows of base-8 digits, recombined by :meth:`SelectionOutput.from_values`):

1. ``invalid`` — some report is not strictly monotone (``b̂`` strictly increasing, ``â`` strictly
   decreasing; the same rule :func:`market.terms.validate_report` applies before encryption). Computed
   in the circuit, so the evaluator's output alone certifies that the reports it ran on were valid.
2. the hurdle filter of both modes (a compile-time term): ``s(Q) >= c·max(h_mm, h_rm)`` with ``c = 2``
   (margin, ``s/2 >= h``) or ``c = 1`` (spread); weak inequality, exact integers.
3. ``Q_sel = argmax J(Q) = Q·s(Q)`` over the surviving ``Q > 0``, ties to the larger ``Q``; no survivor
   (or an invalid report) gives ``trade = 0`` and zeros everywhere else, so no grid point leaks.
4. [decided] the selected rates are returned as ``b̂[Q_sel]`` and ``J(Q_sel)``; the custodian derives
   ``â[Q_sel] = b̂[Q_sel] + J/Q_sel`` (exact). ``J`` is carried through the argmax anyway, carrying
   ``â`` as well would cost a second 10-bit multiplexer per tournament node.

[derived] D10 (MODEL.md): for monotone reports the spread is non-increasing, the hurdle keeps a prefix of
the grid and the J-argmax over that prefix passes the D2 equilibrium test, so the circuit does not
recompute the O(N²) equilibrium filter; the tests check the equality against
:func:`market.selection.select_equilibrium` with the filter on.

Formulation "radix" (the default, :data:`DEFAULT_FORMULATION`)
--------------------------------------------------------------
[measured] With ``mono`` parameters every PBS of a circuit pays for the widest encrypted integer anywhere in it
(optimizer complexity per PBS, 200 independent lookups: 3-bit 5.0e7, 4-bit 9.5e7, 5-bit 2.2e8; the limbs
circuit's 11-15-bit encodings ran at ≈ 22 ms per PBS). "radix" keeps EVERY encrypted integer at most 4 bits
wide (``compiled.graph.maximum_integer_bit_width() == 4``, checked in the benchmark), as tfhe-rs radix
integers do, and pays 9.5e7 per PBS (≈ 7-8 ms on 2 idle cores):

* inputs: :func:`pack_report` emits each offset as the digits of :func:`rate_layout` (10 bits -> 3, 3, 3, 1
  bits, least significant first) and each hurdle as the first ``hurdle_bits`` bits of that layout, one input
  element per digit; digits are in range by construction and a report still denotes exactly one vector of
  integers, so the in-circuit validity check certifies it as before;
* every lookup input is a non-negative sum whose bound is known (``_tlu_in`` asserts it is <= 15 and pins the
  width to 4 bits: no signedness or width depends on what the inputset happened to reach);
* comparisons are borrow chains (:func:`_borrow_chain`): digit i looks up ``x_i − y_i − β + 2**w`` in
  ``[0, 2**(w+1))`` for the next borrow, one PBS per digit (a difference's digit ``t mod 2**w`` is linear in t and
  the borrow);
  the spread's top digit stays unreduced (a small signed value offset by ``2**w``), hence the narrow top digit;
* monotonicity: 2N chains; ``invalid`` from sums of at most 15 strict bits;
* hurdle: ``max(h_mm, h_rm)`` by one chain and a two-table multiplexer whose tables also multiply by c, then
  ``G = c·H`` re-normalised to the rate layout (:func:`_normalize`); ``s(Q) >= G`` is a chain over the low
  digits and one lookup on the top digit that also folds in ``invalid``: that is ``f(Q)``;
* ``J(Q) = f·Q·s(Q)`` as base-8 digits (five for N·1023 < 8**5): per digit ``s_i`` one table per grid point on
  ``2·s_i + f`` gives each octal digit of ``f·Q·s_i·2**offset_i`` (the public Q multiplies inside the table,
  no noise growth), and :func:`_normalize` reduces the column sums to digits with carry lookups on groups
  whose sum stays <= 15 (Wallace-style; the digit is linear when the carry is 0/1);
* argmax: a tournament on the digit vectors. The right (larger Q) subtree wins iff ``J_R − J_L − (1 − f_R) >= 0``,
  a borrow chain whose borrow-in is ``1 − f_R``, where ``f_R`` is f at the right subtree's FIRST leaf, a public
  position. [derived] Valid reports have a strictly decreasing spread, so the feasible Q form a prefix 1..k: the
  right subtree holds a feasible Q iff its first leaf is feasible, and then every leaf on its left is feasible
  too; infeasible leaves carry J = 0 and never beat a feasible one; ties go to the larger Q. The kept digits come
  from a two-table multiplexer per digit on ``2·digit + flag``;
* ``trade = f(1)`` (the same prefix argument; an invalid report zeroes every f). The winner is one-hot: leaf Q
  won every node on its path iff its "won" bits plus ``trade`` sum to its depth + 1 (one lookup per leaf, which
  masks the digits of b̂_Q; per-leaf tables on the same sum give the digits of Q; both summed over the leaves,
  exactly one term non-zero);
* output: rows ``[trade, invalid, Q_sel, b̂_sel, J_sel]`` of D base-8 digits (shape ``(5, D)``, D = digits of
  N·max_offset); no trade gives all-zero rows. :meth:`SelectionOutput.from_values` recombines them (five plain
  values are the D = 1 case).

Cost, radix (``benchmarks/bench_fhe.py`` -> ``bench-results/bench_fhe.json``; 10-bit offsets, 8-bit hurdles)
---------------------------------------------------------------------------------------------------------
PBS ≈ 38 per grid point (monotonicity 8, spread borrows 3, hurdle chain 3, f 1, J digits ≈ 16 — 11 product
tables and ≈ 5 carries —, one-hot 7) plus 15 per tournament node (5-digit chain, 10 multiplexer lookups) plus
≈ 15 once (hurdles, ``invalid``): N = 8, 16, 32 -> 382, 848, 1698 PBS, linear in N (a product of Q and a 3-bit
digit needs a third octal digit once N > 9, and J a sixth digit only beyond N = 32). Digits whose borrow or
carry is 0/1 are formed linearly (``t + 2**w·β − 2**w``, ``x − base·carry``) instead of by a lookup: that
saved 13 % of the PBS with the same parameters (noise 2-norms up to ≈ 17 at lookup inputs, which concrete's
optimizer checks; outputs stay sums of fresh lookups, 2-norm <= √N, because [measured] the optimizer chose the
same parameters for outputs of 2-norm 8 and 56, i.e. it does not bound output noise). The price per PBS does not grow with N:
evaluation keys 111 MB at every N, peak memory 1.3 GB, global p_error 3-6e-6. Evaluation on this 2-core
machine, idle (load average 1.1-1.7): N = 8, 16, 32 -> 3.6, 6.9 (6.6-7.2), 14.2 (13.2-15.2) s, so the
issue's targets (N = 16 <= 10 s, N = 32 <= 30 s) are met; under the protocol's fixed FFT plan (about 5 %
slower) and on a loaded machine it is slower (an earlier version, 978 PBS at N = 16, took 8.4-9.2 s with the
fixed plan and 14.9 s while another process held one core). Costs paid: input
ciphertexts grow with the digit count (one LWE ciphertext per digit: 1.2 MB per report at N = 16, 2.2 MB at
N = 32, against 0.3-0.6 MB for "limbs"); compile 6-12 s, key generation 3-4 s. Chosen as the default because it
is faster than every other formulation at N = 8, 16 and 32 with smaller keys and passes the same parity tests.

How (formulation "tournament", the first one; see ``benchmarks/bench_fhe.py`` for the comparison)
-----------------------------------------------------------------------------------------------
TFHE cost tracks the number of programmable bootstraps (PBS) and, above all, the widest table lookup:
with the ``mono`` parameter strategy every PBS uses the parameters of the widest one (measured on this
machine, 8 sign tests of 11-bit values: 4-bit lookups 104 MB keys / 0.9 s, 6-bit 409 MB / 2.3 s, 8-bit
3.5 GB / 25 s). So every lookup here reads at most :data:`TLU_BITS` = 4 bits:

* a sign test of a wide value is ``fhe.truncate_bit_pattern`` (one cheap PBS per removed low bit) and a
  4-bit lookup, or the top bit of ``fhe.bits`` (one PBS per bit, shared by every use of the same value);
* a product ``bit × value`` is computed per :data:`CHUNK`-bit chunk of the value's bits as a 4-bit lookup
  of ``chunk + 8·bit`` (the chunk sums are plaintext-free additions);
* ``J(Q) = Q·s(Q)`` is a plaintext × ciphertext product (no PBS): the masked spread
  ``f(Q)·s(Q)`` is built from chunks, then multiplied by the public ``Q``;
* a comparison ``s(Q) >= c·H`` of the spread with the larger hurdle is done chunk by chunk on the
  spread's bits (ternary per chunk, combined most-significant first), so the inputs stay 11-bit wide;
* the argmax is a tournament over the leaves ``Q = 0..N``: each node takes the sign of ``J_R − J_L``
  from its bits, keeps ``J_L + relu(J_R − J_L)`` (ties to the right, the larger Q), and multiplexes the
  index and ``b̂`` the same way. Infeasible leaves carry ``J = −1`` and the ``Q = 0`` leaf carries
  ``J = 0``, so "no survivor" selects ``Q = 0`` with zero rates without any extra masking.

Formulation "limbs" (the default before "radix")
-----------------------------------------------
The same rule without any wide ``J`` integer: each leaf carries ``J' = f·(Q·s + 1) = 64·u + v`` (``v < 64``,
``u < 512``). ``P = f·(Q·(s mod 64) + 1)`` (< 11 bits) is built from one table per ``Q`` on 3-bit chunks
of ``s`` plus the feasibility bit, so the scaling by the public ``Q`` happens inside the table (a constant
multiply of a ciphertext would amplify its noise and force larger parameters); ``v`` and the carry come from
``P``'s bits and ``u`` = carry + per-Q tables on the high chunks. A node keeps the right (larger Q) leaf iff
``2·(u_R − u_L) − [v_R < v_L] >= 0``: two sign tests of 7- and 11-bit values; ``u``, ``v``, ``b̂`` and the
index are multiplexed from the bits of their differences (a signed multiplexer for ``u`` and ``v``). "No
survivor" is ``trade = 0`` (every ``J' = 0``); the outputs are lookups masked by ``trade``. Sign tests use
``fhe.AutoTruncator`` so each is a true 4-bit lookup after width unification. The widest encoding drops by
one bit and the parameters by one decomposition level: ≈ 23 ms per PBS instead of ≈ 40 ms, about 2× faster
than the tournament at N = 8, 16, 32 with fewer keys and less memory (README, bench_fhe.json). Its inputset
is 400 random samples plus the structured extremes (60 gave a too-narrow inferred width at N = 5).

Cost of "tournament" and "limbs" (``bench-results/bench_fhe.json``; 2 cores, shared machine)
-----------------------------------------------------------------------------------------
"tournament": PBS per grid point ≈ 39 (2 monotonicity sign tests 2×8, spread bits 11, hurdle comparison 8, masked J 4)
plus ≈ 42 per tournament node (J difference bits 14-16, its relu 5, b̂ multiplexer 14, index 0-8), so the
count grows linearly: N = 4, 8, 16, 32 -> 414, 847, 1714, 3486 PBS. Time per PBS grows with the widest
encoding, which is J's (``log2(N·1023) + 1`` = 13..16 bits): evaluation 11.7, 39, 69, 169 s; evaluation
keys 160-273 MB; peak memory 1.7-2.5 GB; replay byte-identical within a process.

"limbs": N = 8, 16, 32 -> 805, 1663, 3568 PBS, evaluation 19, 37.5, 80.4 s (load average ≈ 3, like the
radix run), keys 160-172 MB. Neither meets the
issue's time targets (N = 16 in 10 s, N = 32 in 30 s); keys and memory they do. The pairwise formulation
(O(N²) exact sign tests, no multiplexed J) costs more PBS from N = 4 on; the ``multi`` parameter strategy ran
slower here with 3-4× larger keys. "radix" (above) is the step this paragraph used to name as next.

Replay across processes: tfhe-rs inside concrete-python 2.11 picks its FFT plan per process by timing, and two
plans can round an intermediate differently (three fresh processes at N = 3 gave two output digests);
:mod:`crypto.fhe_runtime` fixes the plan (preloaded library) so that the protocol's replay is exact.

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
    "CHUNK",
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
    "terms_digest",
]

TLU_BITS = 4  # widest table lookup in the circuit (see module docstring for the measurements)
CHUNK = 3  # value bits per masked-product lookup: CHUNK + 1 mask bit = TLU_BITS
TLU_MAX = (1 << TLU_BITS) - 1  # largest lookup input; also the most 0/1 bits summed before one any/all lookup
FORMULATIONS = ("tournament", "pairwise", "limbs", "radix")
DEFAULT_FORMULATION = "radix"  # ≈ 2.5-5× faster than "limbs" at N = 8, 16, 32 (bench_fhe.json), same rule
STRATEGIES = ("mono", "multi")
ARTIFACT_NAME = "server.zip"
OUTPUT_FIELDS = ("trade", "invalid", "volume", "b_offset", "joint_profit")


class CircuitError(CryptoError, ValueError):
    """Bad circuit input (names the field and value) or a blob that fails its digest check."""


def terms_digest(terms: MarketTerms, formulation: str = DEFAULT_FORMULATION, strategy: str = "mono") -> bytes:
    """SHA-256 of the canonical terms, formulation and parameter strategy: the cache key of a compiled circuit
    (always both, so that a change of the default formulation can never reuse another formulation's artifact)."""
    body: dict[str, Any] = dict(terms.as_dict()) | {"formulation": formulation, "parameter_strategy": strategy}
    return digest(canonical_bytes(body, name="terms"))


@dataclass(frozen=True)
class CircuitShape:
    """The compile-time parameters the circuit depends on (derived from :class:`MarketTerms`)."""

    grid: int
    rate_bits: int
    hurdle_bits: int
    hurdle_factor: int  # c: 2 for margin (s/2 >= h), 1 for spread (s >= h)
    formulation: str = DEFAULT_FORMULATION
    strategy: str = "mono"  # concrete parameter_selection_strategy

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
        shape = cls(
            grid=terms.grid,
            rate_bits=terms.rate_bits,
            hurdle_bits=terms.hurdle_bits,
            hurdle_factor=2 if terms.hurdle_mode is HurdleMode.MARGIN else 1,
            formulation=formulation,
            strategy=strategy,
        )
        if formulation != "radix" and shape.joint_bits > 16:  # radix carries J as digits: no such limit
            raise CircuitError(
                f"terms.grid = {terms.grid} with rate_bits = {terms.rate_bits}: J = Q·s needs "
                f"{shape.joint_bits} signed bits, concrete supports 16 (formulation {formulation!r}; "
                "the default 'radix' has no such limit)"
            )
        return shape

    @property
    def max_offset(self) -> int:
        return (1 << self.rate_bits) - 1

    @property
    def max_joint(self) -> int:
        return self.grid * self.max_offset

    @property
    def joint_bits(self) -> int:
        """Signed width of ``J_R − J_L`` with ``J ∈ [−1, N·max_offset]``."""
        return (self.max_joint + 1).bit_length() + 1

    @property
    def report_length(self) -> int:
        """Length of one packed report (``pack_report``): values, or digits in formulation "radix"."""
        if self.formulation == "radix":
            return (self.grid + 1) * len(self.rate_layout) + len(self.hurdle_layout)
        return self.grid + 2

    @property
    def rate_layout(self) -> tuple[int, ...]:
        """Digit widths of a rate offset in formulation "radix" (least significant first)."""
        return rate_layout(self.rate_bits)

    @property
    def hurdle_layout(self) -> tuple[int, ...]:
        """Digit widths of a hurdle: the first ``hurdle_bits`` bits of the rate layout (digits line up)."""
        return _prefix_layout(self.rate_layout, self.hurdle_bits)

    @property
    def joint_digits(self) -> int:
        """Base-8 digits of ``J <= N·max_offset`` (the width of every output row in formulation "radix")."""
        return -(-self.max_joint.bit_length() // RADIX_BITS)

    @property
    def volume_digits(self) -> int:
        return -(-self.grid.bit_length() // RADIX_BITS)


# --- building blocks (run on concrete tracers; each docstring gives its PBS cost) ----------------------------


def _fhe():
    from concrete import fhe  # local: importing crypto must not import concrete/torch

    return fhe


def _lut(table: list[int]):
    return _fhe().LookupTable(table)


_AUTO: list | None = None  # AutoTruncators of the trace in progress ("limbs"); None = fixed widths


class _AutoPool:
    """``fhe.AutoTruncator`` objects (one per call site, created before tracing): the truncation then
    removes ``actual width − 4`` bits whatever width the compiler assigned after unification, so every sign
    test is a true 4-bit lookup."""

    def __init__(self, count: int):
        self.items = [_fhe().AutoTruncator(target_msbs=TLU_BITS) for _ in range(count)]
        self.next = 0
        self.widths = [0] * count

    def widen(self):
        """After ``adjust``: never remove fewer bits than the declared (true) width needs; the inputset's
        observed range may be narrower than the true one (hints do not reach ``adjust``)."""
        for truncator, width in zip(self.items, self.widths):
            truncator.lsbs_to_remove = max(truncator.lsbs_to_remove, width - TLU_BITS)


def _is_negative(x, width: int):
    """``1`` where the ``width``-bit signed ``x`` is negative: ``width − 4`` truncation PBS + one lookup."""
    fhe = _fhe()
    if _AUTO is not None:
        pool = _AUTO[0]
        truncator = pool.items[pool.next]
        pool.widths[pool.next] = width
        pool.next += 1
        kept = fhe.truncate_bit_pattern(x, lsbs_to_remove=truncator)
    else:
        kept = fhe.truncate_bit_pattern(x, lsbs_to_remove=width - TLU_BITS)
    return kept < 0


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


def _masked_chunks(bit_source, nbits: int, mask, keep_when: int, scale: int = 1):
    """``mask·value`` (``keep_when = 1``) or ``(1 − mask)·value`` (``keep_when = 0``) for the low ``nbits``
    of a value whose bits are ``bit_source`` (``fhe.bits(value)``): one 4-bit lookup per chunk."""
    total = None
    for start in range(0, nbits, CHUNK):
        stop = min(start + CHUNK, nbits)
        chunk = bit_source[start:stop]
        table = [
            ((v & ((1 << CHUNK) - 1)) << start) * scale if (v >> CHUNK) == keep_when else 0
            for v in range(1 << (CHUNK + 1))
        ]
        part = _lut(table)[_hint(chunk + (1 << CHUNK) * mask, CHUNK + 1)]
        total = part if total is None else total + part
    return total


def _mux_right(sign, left, right, nbits: int):
    """``left if sign else right`` for ``right − left ∈ [0, 2**nbits)``: ``left + (1−sign)·(right−left)``.

    Cost: ``nbits`` bit extractions of the difference + ``ceil(nbits/3)`` lookups."""
    fhe = _fhe()
    delta = _hint(right - left, nbits + 1)
    return left + _masked_chunks(fhe.bits(delta), nbits, sign, keep_when=0)


def _winning_index(left_wins, level_q, k: int, q_bits: int):
    """The index kept by each of the ``k`` pairs of a tournament level (ties to the right, the larger Q).
    While indices are still public (a numpy array) this is a plaintext × bit product, no PBS."""
    if isinstance(level_q, np.ndarray):
        q_l, q_r = level_q[0 : 2 * k : 2], level_q[1 : 2 * k : 2]
        return q_r - left_wins * (q_r - q_l)
    return _mux_right(left_wins, level_q[0 : 2 * k : 2], level_q[1 : 2 * k : 2], q_bits)


def _leftover_index(level_q, m: int, new_q):
    """The unpaired last index of an odd level, as a tracer like ``new_q`` so the two can be concatenated."""
    rest_q = level_q[m - 1 : m]
    if isinstance(rest_q, np.ndarray):
        rest_q = new_q[0:1] * 0 + rest_q
    return rest_q


def _mux_signed(sign, left, right, nbits: int):
    """``left if sign else right`` for ``right − left ∈ [−2**nbits, 2**nbits)``: the difference's ``nbits + 1``
    two's-complement bits, the sign bit weighted ``−2**nbits`` inside the chunk tables."""
    fhe = _fhe()
    width = nbits + 1
    bits = fhe.bits(_hint(right - left, width))
    total = None
    for start in range(0, width, CHUNK):
        stop = min(start + CHUNK, width)
        table = []
        for x in range(1 << (CHUNK + 1)):
            val = 0
            if (x >> CHUNK) == 0:
                for i in range(start, stop):
                    if (x >> (i - start)) & 1:
                        val += -(1 << i) if i == nbits else (1 << i)
            table.append(val)
        part = _lut(table)[_hint(bits[start:stop] + (1 << CHUNK) * sign, CHUNK + 1)]
        total = part if total is None else total + part
    return left + total


# --- the circuit -------------------------------------------------------------------------------------------


def _rule(shape: CircuitShape) -> Callable:
    """The traced function ``(mm, rm) -> [trade, invalid, Q_sel, b̂_sel, J_sel]`` for ``shape``."""
    n = shape.grid
    rb = shape.rate_bits
    hb = shape.hurdle_bits
    c = shape.hurdle_factor
    wd = shape.joint_bits

    def rule(mm, rm):
        fhe = _fhe()
        b = mm[0 : n + 1]
        a = rm[0 : n + 1]
        h_mm = mm[n + 1]
        h_rm = rm[n + 1]

        # 1. strict monotonicity of both reports: every step must be >= 1 (11-bit signed sign tests).
        steps = np.concatenate((b[1:] - b[:-1], a[:-1] - a[1:])) - 1
        not_strict = _is_negative(steps, rb + 1)
        invalid = _any([not_strict[i] for i in range(2 * n)])

        # 2. H = max(h_mm, h_rm) = h_mm + relu(h_rm − h_mm), then the bits of G = c·H.
        dh = h_rm - h_mm
        dh_bits = fhe.bits(dh)
        hurdle = h_mm + _masked_chunks(dh_bits, hb, dh_bits[hb], keep_when=0)
        h_bits = fhe.bits(hurdle)
        g_bits = ([0] if c == 2 else []) + [h_bits[i] for i in range(hb)]
        over_bits = [bit for bit in g_bits[rb:] if not isinstance(bit, int)]
        over = _any(over_bits) if over_bits else 0

        # 3. spreads s(Q), Q = 1..N, and the hurdle test s(Q) >= G chunk by chunk (most significant first).
        spread = a[1:] - b[1:]
        s_bits = fhe.bits(spread)
        s_negative = s_bits[rb]
        ternary = _lut([0] * 7 + [1] + [2] * 8)  # (s_k − G_k) + 7 -> 0: less, 1: equal, 2: greater
        combine = _lut([0, 0, 0, 0, 1, 2, 2, 2, 2] + [0] * 7)  # 3·high + low, high decides unless equal
        verdict = None
        for start in reversed(range(0, rb, CHUNK)):
            stop = min(start + CHUNK, rb)
            s_chunk = s_bits[start:stop]
            g_chunk = _sum([g_bits[i] * (1 << (i - start)) for i in range(start, stop) if i < len(g_bits)] or [0])
            cmp = ternary[_hint(s_chunk - g_chunk + 7, TLU_BITS)]
            verdict = cmp if verdict is None else combine[_hint(3 * verdict + cmp, TLU_BITS)]
        bad = _sum([s_negative, over, invalid])  # 0..3, each term 0/1
        feasible = _lut([1 if (v % 3) >= 1 and v // 3 == 0 else 0 for v in range(16)])[_hint(verdict + 3 * bad, TLU_BITS)]

        if shape.formulation == "limbs":
            return _limbs(shape, s_bits, feasible, invalid, b)

        # 4. masked joint profit per leaf: J = Q·s if feasible else −1.
        masked_spread = _masked_chunks(s_bits, rb, feasible, keep_when=1)
        volumes = np.arange(1, n + 1)
        joint = fhe.hint(masked_spread * volumes + feasible - 1, bit_width=wd)

        trade = _any([feasible[i] for i in range(n)])
        if shape.formulation == "tournament":
            q_sel, b_sel, j_sel = _tournament(shape, joint, b)
        else:
            q_sel, b_sel, j_sel = _pairwise(shape, joint, s_bits, b, feasible)
        return fhe.array([trade, invalid, q_sel, b_sel, j_sel])

    return rule


LIMB = 6  # J' = 64·u + v: the low limb v holds 6 bits, u <= N·(2**(rb−6) − 1) + 31 stays < 512


def _limbs(shape: CircuitShape, s_bits, feasible, invalid, b):
    """Formulation "limbs": the tournament on ``J' = f·(Q·s + 1) = 64·u + v`` (``v < 64``) so that no
    encoding is wider than the 11-bit signed spread (the widest PBS input decides the mono parameters).

    Leaf: masked spread limbs ``L = f·(s mod 64)``, ``H = f·(s >> 6)`` (chunk lookups), ``P = Q·L + f``
    (< 2**11) whose bits give ``v = P mod 64`` and the carry ``P >> 6``; ``u = Q·H + carry``.
    Node: the right (larger Q) leaf wins iff ``2·(u_R − u_L) − [v_R < v_L] >= 0`` (two sign tests of
    7- and 11-bit values), then ``u``, ``v``, ``b̂`` and the index are multiplexed from their differences'
    bits. Outputs are fresh lookups masked by ``trade`` (no survivor = all leaves J' = 0), so the 15-bit
    output encoding never feeds a PBS input.
    """
    fhe = _fhe()
    n = shape.grid
    rb = shape.rate_bits
    hi_bits = rb - LIMB
    q_bits = n.bit_length()
    volumes = np.arange(1, n + 1)
    mask8 = (1 << CHUNK) * feasible

    def per_q(start: int, stop: int, value):
        """One table per leaf Q on ``chunk + 8·f`` (f = 0 -> 0): scaling inside the table adds no noise."""
        tables = [
            _lut([value(q, x & ((1 << CHUNK) - 1)) if (x >> CHUNK) == 1 else 0 for x in range(1 << (CHUNK + 1))])
            for q in volumes
        ]
        return _fhe().LookupTable(tables)[_hint(s_bits[start:stop] + mask8, CHUNK + 1)]

    # P = f·(Q·(s mod 64) + 1) < 2**11; u = f·Q·(s >> 6) + (P >> 6); v = P mod 64 (all sums of fresh lookups)
    p_max = n * ((1 << LIMB) - 1) + 1
    p_width = p_max.bit_length()
    p = _hint(per_q(0, 3, lambda q, c: q * c + 1) + per_q(3, 6, lambda q, c: q * c * 8), p_width)
    p_bits = fhe.bits(p)

    def recombine(lo_bit: int, hi_bit: int, shift: int):
        """Bits ``lo_bit..hi_bit−1`` of P as an integer (>> shift): 3-bit chunk lookups, no scaled noise."""
        total = None
        for start in range(lo_bit, hi_bit, CHUNK):
            stop = min(start + CHUNK, hi_bit)
            part = _lut([x << (start - shift) for x in range(1 << (stop - start))])[_hint(p_bits[start:stop], stop - start)]
            total = part if total is None else total + part
        return total

    v = recombine(0, min(LIMB, p_width), 0)
    u = recombine(LIMB, p_width, LIMB) if p_width > LIMB else None
    for start in range(LIMB, rb, CHUNK):
        stop = min(start + CHUNK, rb)
        part = per_q(start, stop, lambda q, c, start=start: q * (c << (start - LIMB)))
        u = part if u is None else u + part
    u_bits = (n * ((1 << hi_bits) - 1) + (p_max >> LIMB)).bit_length()
    trade = _any([feasible[i] for i in range(n)])

    level_u, level_v, level_b = u, v, b[1:]
    level_q: Any = np.arange(1, n + 1)
    while level_u.shape[0] > 1:
        m = level_u.shape[0]
        k = m // 2
        ul, ur = level_u[0 : 2 * k : 2], level_u[1 : 2 * k : 2]
        vl, vr = level_v[0 : 2 * k : 2], level_v[1 : 2 * k : 2]
        v_less = _is_negative(_hint(vr - vl, LIMB + 1), LIMB + 1)
        left_wins = _is_negative(_hint(2 * (ur - ul) - v_less, u_bits + 2), u_bits + 2)
        new_u = _mux_signed(left_wins, ul, ur, u_bits)
        new_v = _mux_signed(left_wins, vl, vr, LIMB)
        new_b = _mux_right(left_wins, level_b[0 : 2 * k : 2], level_b[1 : 2 * k : 2], rb)
        new_q = _winning_index(left_wins, level_q, k, q_bits)
        if m % 2:
            rest_q = _leftover_index(level_q, m, new_q)
            new_u = np.concatenate((new_u, level_u[m - 1 : m]))
            new_v = np.concatenate((new_v, level_v[m - 1 : m]))
            new_b = np.concatenate((new_b, level_b[m - 1 : m]))
            new_q = np.concatenate((new_q, rest_q))
        level_u, level_v, level_b, level_q = new_u, new_v, new_b, new_q
    u_w, v_w, b_w, q_w = level_u[0], level_v[0], level_b[0], level_q[0]
    # outputs: J = 64·u + v − 1 when trade, else 0; every term is a fresh lookup (output-only encodings)
    ub = fhe.bits(u_w)
    vb = fhe.bits(v_w)
    j_sel = _masked_chunks(ub, u_bits, trade, keep_when=1, scale=1 << LIMB)
    parts = []
    for start in range(0, LIMB, CHUNK):
        stop = min(start + CHUNK, LIMB)
        table = [(((x & ((1 << CHUNK) - 1)) << start) - (1 if start == 0 else 0)) if (x >> CHUNK) == 1 else 0
                 for x in range(1 << (CHUNK + 1))]
        parts.append(_lut(table)[_hint(vb[start:stop] + (1 << CHUNK) * trade, CHUNK + 1)])
    j_sel = j_sel + _sum(parts)
    b_sel = _masked_chunks(fhe.bits(b_w), rb, trade, keep_when=1)
    if isinstance(q_w, (int, np.integer)):
        q_sel = _lut([0, int(q_w)])[trade]
    else:
        q_sel = _masked_chunks(fhe.bits(q_w), q_bits, trade, keep_when=1)
    ident = _lut([0, 1])
    return fhe.array([ident[trade], ident[invalid], q_sel, b_sel, j_sel])


def _tournament(shape: CircuitShape, joint, b):
    """Argmax over leaves ``Q = 1..N`` by a knockout tree (N − 1 nodes in ceil(log2 N) levels), then one
    node against the ``Q = 0`` leaf.

    Each level is one set of tensor operations over all its nodes, so concrete spreads them over the
    cores. A node keeps the left (smaller Q) leaf only if its J is strictly larger (ties to the larger Q);
    an odd leaf out passes to the next level unchanged, keeping left-to-right order.
    """
    fhe = _fhe()
    n = shape.grid
    wd = shape.joint_bits
    q_bits = n.bit_length()
    level_j = joint
    level_b = b[1:]
    level_q: Any = np.arange(1, n + 1)  # public until the first level has been decided
    while level_j.shape[0] > 1:
        m = level_j.shape[0]
        k = m // 2
        j_l, j_r = level_j[0 : 2 * k : 2], level_j[1 : 2 * k : 2]
        d_bits = fhe.bits(_hint(j_r - j_l, wd))
        left_wins = d_bits[wd - 1]  # J_R < J_L strictly
        new_j = j_l + _masked_chunks(d_bits, wd - 1, left_wins, keep_when=0)
        new_b = _mux_right(left_wins, level_b[0 : 2 * k : 2], level_b[1 : 2 * k : 2], shape.rate_bits)
        new_q = _winning_index(left_wins, level_q, k, q_bits)
        if m % 2:
            rest_q = _leftover_index(level_q, m, new_q)
            new_j = np.concatenate((new_j, level_j[m - 1 : m]))
            new_b = np.concatenate((new_b, level_b[m - 1 : m]))
            new_q = np.concatenate((new_q, rest_q))
        level_j, level_b, level_q = new_j, new_b, new_q
    # final node against the Q = 0 leaf (J = 0, b̂ = 0): it wins iff no leaf survived (J = −1)
    j_w, b_w, q_w = level_j[0], level_b[0], level_q[0]
    d_bits = fhe.bits(_hint(j_w, wd))
    none_left = d_bits[wd - 1]
    j_sel = _masked_chunks(d_bits, wd - 1, none_left, keep_when=0)
    b_sel = _masked_chunks(fhe.bits(b_w), shape.rate_bits, none_left, keep_when=0)
    if isinstance(q_w, (int, np.integer)):
        q_sel = int(q_w) - none_left * int(q_w)
    else:
        q_sel = _masked_chunks(fhe.bits(q_w), q_bits, none_left, keep_when=0)
    return q_sel, b_sel, j_sel


def _pairwise(shape: CircuitShape, joint, s_bits, b, feasible):
    """Argmax by all pairwise comparisons (O(N²) sign tests, no multiplexed J): a point wins iff its J is
    >= every smaller Q's and > every larger Q's; then the outputs are one-hot sums of masked chunks."""
    fhe = _fhe()
    n = shape.grid
    wd = shape.joint_bits
    rb = shape.rate_bits
    beats: dict[int, list] = {q: [] for q in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            # leaf i+1 (smaller Q) vs leaf j+1: "smaller wins strictly" bit
            smaller_wins = fhe.bits(_hint(joint[j] - joint[i], wd))[wd - 1]  # sign bit
            beats[i].append(smaller_wins)
            beats[j].append(1 - smaller_wins)
    winner = []
    for q in range(n):
        # AND of all conditions: count, in groups of <= 15, each group "all ones", then combined
        winner.append(_fold_bits(beats[q] + [feasible[q]], lambda g: _hint(_sum(g), len(g).bit_length()) >= len(g)))
    volumes = np.arange(1, n + 1)
    win = fhe.array(winner)
    q_sel = np.sum(win * volumes)
    j_sel = np.sum(_masked_chunks(s_bits, rb, win, keep_when=1) * volumes)
    b_sel = np.sum(_masked_chunks(fhe.bits(b[1:]), rb, win, keep_when=1))
    return q_sel, b_sel, j_sel


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


def _prefix_layout(layout: tuple[int, ...], bits: int) -> tuple[int, ...]:
    """The first ``bits`` bits of ``layout`` (a hurdle's digits line up with the rates' digits)."""
    out, left = [], bits
    for width in layout:
        if left <= 0:
            break
        out.append(min(width, left))
        left -= width
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


def _radix(shape: "CircuitShape") -> Callable:
    """Formulation "radix": the rule on base-8 digits, so that no encrypted integer is wider than 4 bits and
    every PBS runs with the small parameters of a 4-bit lookup (see the module docstring for the design)."""
    n = shape.grid
    layout = shape.rate_layout
    hlayout = shape.hurdle_layout
    rd, hd = len(layout), len(hlayout)
    offsets = _offsets(layout)
    top = rd - 1
    top_width = layout[top]
    c = shape.hurdle_factor
    jd = shape.joint_digits
    volumes = list(range(1, n + 1))

    def rule(mm, rm):
        fhe = _fhe()
        b = mm[0 : (n + 1) * rd].reshape((n + 1, rd))
        a = rm[0 : (n + 1) * rd].reshape((n + 1, rd))
        h_mm = mm[(n + 1) * rd : (n + 1) * rd + hd]
        h_rm = rm[(n + 1) * rd : (n + 1) * rd + hd]

        # 1. strict monotonicity: b̂_q < b̂_(q+1) and â_(q+1) < â_q, i.e. the borrow out of x − y is 1 (2N chains).
        lower = np.concatenate((b[0:n], a[1 : n + 1]))
        upper = np.concatenate((b[1 : n + 1], a[0:n]))
        strict = _borrow_chain([lower[:, i] for i in range(rd)], [upper[:, i] for i in range(rd)], layout)
        valid = _all_ones([strict[i] for i in range(2 * n)])
        invalid = 1 - valid

        # 2. G = c·max(h_mm, h_rm) as digits of the rate layout (the top column keeps everything above).
        rm_larger = _borrow_chain([h_mm[i] for i in range(hd)], [h_rm[i] for i in range(hd)], hlayout)
        keep_mm = _lut16([c * (v >> 1) if v % 2 == 0 else 0 for v in range(16)])
        keep_rm = _lut16([c * (v >> 1) if v % 2 == 1 else 0 for v in range(16)])
        columns: list[list] = [[] for _ in range(rd)]
        for i, width in enumerate(hlayout):
            bound = c * ((1 << width) - 1)
            columns[i].append((keep_mm[_flagged(h_mm[i], rm_larger, 7)], bound))
            columns[i].append((keep_rm[_flagged(h_rm[i], rm_larger, 7)], bound))
        # the two kept parts are exclusive: merge them first so their bounds do not add up
        for i in range(hd):
            (x, bx), (y, _) = columns[i]
            columns[i] = [(x + y, bx)]
        g = _normalize(columns, [1 << w for w in layout])
        g_top, g_top_bound = g[top]

        # 3. spreads s(Q) = â_Q − b̂_Q, Q = 1..N: low digits normalised, the top kept as t = s_top + 2**w_top.
        s_low, s_top, s_top_bound = _borrow_chain(
            [a[:, i][1 : n + 1] for i in range(rd)], [b[:, i][1 : n + 1] for i in range(rd)], layout,
            digits=True,
        )
        # 4. hurdle test s >= G on the low digits, then the top: feasible iff s_top − G_top − γ >= 0 and valid.
        gamma = _borrow_chain(s_low, [g[i][0] for i in range(top)], layout[:top]) if top else None
        # v = (s_top − G_top − γ) + 2**w_top + G_top_bound + 1 >= 0; s >= G  <=>  v >= 2**w_top + G_top_bound + 1
        v = s_top + (g_top_bound + 1) if g_top is None else s_top - g_top + (g_top_bound + 1)
        v = v - gamma if gamma is not None else v
        v_bound = s_top_bound + g_top_bound + 1
        threshold = (1 << top_width) + g_top_bound + 1
        span = v_bound + 1
        if 2 * span - 1 <= TLU_MAX:
            feasible = _lut16([1 if x % 2 == 0 and x >> 1 >= threshold else 0 for x in range(2 * span)])[
                _flagged(v, invalid, v_bound)]
        else:
            passes = _lut16([1 if x >= threshold else 0 for x in range(span)])[_tlu_in(v, v_bound)]
            feasible = _lut16([1, 0, 0, 0])[_tlu_in(1 - passes + 2 * invalid, 3)]
        # [derived] valid reports have a strictly decreasing spread: the feasible Q form a prefix 1..k, so
        # "some Q survives" is feasible(1) (an invalid report zeroes every feasible(Q)).
        trade = feasible[0]

        # 5. J(Q) = f·Q·s(Q) as base-8 digits: per digit i of s one table per Q on 2·digit + f gives each
        # octal digit of f·Q·s_i·2**offset_i (the public Q multiplies inside the table: no noise growth).
        jcols: list[list] = [[] for _ in range(jd)]
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

        # 6. tournament on J digits. Right (larger Q) wins iff J_R − J_L − (1 − f_R) >= 0, f_R = feasible at the
        # right subtree's first leaf: by the prefix property it is 1 iff the right subtree holds a feasible Q,
        # and then every leaf on the left is feasible too (ties go to the larger Q, infeasible never wins).
        level = leaves
        groups = [[q] for q in range(n)]  # leaves under each position of the level
        won: list[list] = [[] for _ in range(n)]  # per leaf: its "won this node" bits
        while len(groups) > 1:
            m = len(groups)
            k = m // 2
            left, right = level[0 : 2 * k : 2], level[1 : 2 * k : 2]
            first_right = fhe.array([feasible[groups[2 * p + 1][0]] for p in range(k)])
            left_wins = _borrow_chain([right[:, i] for i in range(jd)], [left[:, i] for i in range(jd)],
                                      (RADIX_BITS,) * jd, borrow_in=1 - first_right)
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
        j_sel = [level[0, i] for i in range(jd)]

        # 7. one-hot winner (won every node on its path, and trade): Q digits and masked b̂ digits summed.
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
    """One dealer's circuit input ``[offset_0 .. offset_N, hurdle]`` after range checks.

    Raises :class:`CircuitError` naming the field, index and value before anything is encrypted: values
    beyond the compiled bit widths would overflow silently inside the circuit. Monotonicity is *not*
    checked here: the circuit checks it and raises its ``invalid`` flag.
    """
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
    if shape.formulation == "radix":  # each value as its digits; every digit is in range by construction
        digits = [d for v in items for d in _to_digits(int(v), shape.rate_layout)]
        return np.array(digits + _to_digits(int(hurdle), shape.hurdle_layout), dtype=np.int64)
    return np.array([int(v) for v in items] + [int(hurdle)], dtype=np.int64)


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
        if rng.random() < 0.7:  # strictly monotone
            b = np.sort(rng.choice(m + 1, n + 1, replace=False))
            a = np.sort(rng.choice(m + 1, n + 1, replace=False))[::-1]
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
        folder = Path(cache_dir) / to_hex(terms_digest(terms, formulation, strategy))
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
                json.dumps(terms.as_dict() | {"formulation": formulation, "parameter_strategy": strategy})
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
    global _AUTO
    fhe = _fhe()
    if shape.formulation == "radix":  # every lookup input is hinted to its proven 4-bit bound
        inputset = [(pack_report(shape, "mm", mm[:-1], int(mm[-1])), pack_report(shape, "rm", rm[:-1], int(rm[-1])))
                    for mm, rm in build_inputset(shape, samples=60)]
        compiler = fhe.Compiler(_radix(shape), {"mm": "encrypted", "rm": "encrypted"})
        return compiler.compile(inputset, _configuration(shape.strategy, simulation))
    rule = _rule(shape)
    # "limbs" sizes its tournament values from what the inputset reaches (hints do not reach every node)
    inputset = build_inputset(shape, samples=400 if shape.formulation == "limbs" else 60)
    if shape.formulation != "limbs":
        compiler = fhe.Compiler(rule, {"mm": "encrypted", "rm": "encrypted"})
        return compiler.compile(inputset, _configuration(shape.strategy, simulation))
    pool = _AutoPool(2 + 2 * max(1, (shape.grid - 1).bit_length()))

    def traced(mm, rm):
        pool.next = 0
        return rule(mm, rm)

    _AUTO = [pool]
    try:
        fhe.AutoTruncator.adjust(traced, inputset)
        pool.widen()
        compiler = fhe.Compiler(traced, {"mm": "encrypted", "rm": "encrypted"})
        return compiler.compile(inputset, _configuration(shape.strategy, simulation))
    finally:
        _AUTO = None
