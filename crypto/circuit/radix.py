"""The selection rule (docs/MODEL.md §5) in formulation "radix": every encrypted integer is a digit of at most
4 bits. Design: docs/CIRCUIT.md."""
from __future__ import annotations

from typing import Callable

import numpy as np

from crypto.circuit.gadgets import (
    _any,
    _at_least,
    _any_code,
    _borrow_chain,
    _compare3,
    _fhe,
    _flagged,
    _hint,
    _lut16,
    _normalize,
    _per_element,
    _per_element_nonzero,
    _sum,
    _tlu_in,
)
from crypto.circuit.shape import OUTPUT_BASE, RADIX_BITS, TLU_BITS, CircuitShape, _offsets
STRICT, FLAT, REVERSED = 0, 1, 4  # neighbour step codes: three codes sum to < REVERSED unless one is REVERSED

# the fhe.tag of each step, in rule order (CostReport.pbs_per_tag; docs/CIRCUIT.md)
STEPS = ("steps", "invalid", "spreads", "survive_mm", "survive_rm", "feasible", "trade",
         "joint_digits", "joint_carries", "tournament_compare", "tournament_select", "one_hot", "output_rate")


def _radix(shape: "CircuitShape") -> Callable:
    """Formulation "radix": the rule on base-8 digits, so that no encrypted integer is wider than 4 bits and
    every PBS runs with the small parameters of a 4-bit lookup (design: docs/CIRCUIT.md)."""
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

        # 1. neighbour comparisons, one three-way comparison per step: a strict step (b̂_q < b̂_(q+1),
        # â_(q+1) < â_q) gives attainability, a reversed one (b̂_(q+1) < b̂_q or â_q < â_(q+1)) makes the report
        # invalid. step = STRICT, FLAT or REVERSED (codes chosen so that sums of them stay readable).
        lower = np.concatenate((b[0:n], a[1 : n + 1]))
        upper = np.concatenate((b[1 : n + 1], a[0:n]))
        with fhe.tag("steps"):
            step = _compare3([upper[:, i] for i in range(rd)], [lower[:, i] for i in range(rd)], layout,
                             codes=(REVERSED, FLAT, STRICT))
        with fhe.tag("invalid"):
            invalid = _any_code([step[i] for i in range(2 * n)], REVERSED)
            valid = 1 - invalid

        # 2. spreads s(Q) = â_Q − b̂_Q, Q = 1..N: low digits normalised, the top kept as t = s_top + 2**w_top.
        with fhe.tag("spreads"):
            s_low, s_top, s_top_bound = _borrow_chain(
                [a[:, i][1 : n + 1] for i in range(rd)], [b[:, i][1 : n + 1] for i in range(rd)], layout,
                digits=True,
            )
        # 3. survivors (market.no_cut, [derived]): Q attainable, s(Q) >= τ_mm(Q), s(Q) >= τ_rm(Q), reports valid.
        with fhe.tag("survive_mm"):
            pass_mm = _at_least(s_low, s_top, s_top_bound, [tau_mm[:, i] for i in range(rd)], t_top_bound, layout,
                                valid=valid)
        with fhe.tag("survive_rm"):  # both tests and valid: the mm test's bit is this lookup's flag
            passes = _at_least(s_low, s_top, s_top_bound, [tau_rm[:, i] for i in range(rd)], t_top_bound, layout,
                               valid=pass_mm)
        with fhe.tag("feasible"):  # Q = N is always attainable; Q < N needs a strict step on both sides
            if n > 1:
                count = step[1:n] + step[n + 1 : 2 * n] + (1 - passes[0 : n - 1])  # STRICT = 0: 0 iff all hold
                inner = _lut16([1] + [0] * (2 * REVERSED + 1))[_tlu_in(count, 2 * REVERSED + 1)]
                feasible = np.concatenate((inner, passes[n - 1 : n]))
            else:
                feasible = passes
        with fhe.tag("trade"):  # the survivors need not be a prefix once steps are flat: an OR over all Q
            trade = _any([feasible[i] for i in range(n)])

        # 4. J'(Q) = f·(Q·s(Q) + 1) as base-8 digits: per digit i of s one table per Q on 2·digit + f gives each
        # octal digit of f·Q·s_i·2**offset_i (the public Q multiplies inside the table: no noise growth); the
        # + f makes every survivor's J' >= 1 > 0 = every other leaf's, so the argmax needs no feasibility flag.
        jcols: list[list] = [[] for _ in range(jd)]
        jcols[0].append((feasible, 1))
        with fhe.tag("joint_digits"):
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
                    term = _per_element_nonzero(tables, x)
                    if term is not None:
                        jcols[col0 + j].append((term, max(max(table) for table in tables)))
        with fhe.tag("joint_carries"):
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
            with fhe.tag("tournament_compare"):
                left_wins = _borrow_chain([right[:, i] for i in range(jd)], [left[:, i] for i in range(jd)],
                                          (RADIX_BITS,) * jd)
            lw = left_wins.reshape((k, 1))
            with fhe.tag("tournament_select"):
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
        with fhe.tag("one_hot"):
            counts = fhe.array([_sum(won[q] + [trade]) for q in range(n)])
            depth = [len(won[q]) + 1 for q in range(n)]
            count_in = _tlu_in(counts, max(depth))
            winner = _per_element([[1 if v == depth[q] else 0 for v in range(depth[q] + 1)]
                                   for q in range(n)])[count_in]
        # Q_sel's digits are linear in the one-hot winner (leaf Q weighs it by its own digit): no lookup
        q_digits = [np.sum(winner * np.array([((q + 1) >> (RADIX_BITS * j)) % OUTPUT_BASE for q in range(n)]))
                    for j in range(shape.volume_digits)]
        with fhe.tag("output_rate"):
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

