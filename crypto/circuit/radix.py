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
    _scaled_columns,
    _sum,
    _tlu_in,
)
from crypto.circuit.shape import OUTPUT_BASE, RADIX_BITS, TLU_BITS, TLU_MAX, CircuitShape, _offsets
STRICT, FLAT, REVERSED = 0, 1, 4  # neighbour step codes: three codes sum to < REVERSED unless one is REVERSED

# the fhe.tag of each step, in rule order (CostReport.pbs_per_tag; docs/CIRCUIT.md)
STEPS = ("import", "steps", "invalid", "spreads", "hurdle_mm", "hurdle_rm", "joint_digits", "joint_carries",
         "cut_spreads", "cut_products", "cut_carries", "cut_compare", "feasible", "trade", "joint_mask",
         "tournament_compare", "tournament_select", "one_hot", "output_rate")


def cut_pairs(n: int) -> list[tuple[int, int]]:
    """The deviations the no-cut test checks: ``(q, Q)`` for ``0 < q < Q <= N``, grouped by Q."""
    return [(q, big) for big in range(2, n + 1) for q in range(1, big)]


IMPORT_BITS = 5  # an imported digit's native width: TFHE-rs message + carry bits (crypto.tfhers.to_native_digits)
_OUT_OF_RANGE = 9  # first table's mark of a digit outside [1, 2**w]: non-zero, in the lower half, not a digit


def import_tables(widths) -> tuple[list[list[int]], list[int], list[int]]:
    """The two stages that turn ANY imported digit into a digit and a valid bit (docs/CIRCUIT.md, "inputs").

    A dealer encrypts ``digit + 1`` (``report_digits``), so an honest value is in ``[1, 2**w]`` (``w`` the digit's
    width); everything else is invalid: 0 (an all-zero ciphertext), values above ``2**w``, 16..31. A crafted
    ciphertext can also carry a set padding bit; a bootstrap then returns the negacyclic image ``−T[x]``.
    Stage 1 (per digit, on the 5-bit value): ``y`` if valid else 9: every entry non-zero and below 16, the lower
    half of the 5-bit space. Stage 2 (two tables on stage 1's output): the digit ``y − 1`` and the valid bit,
    both 0 on the upper half. An honest input never reaches the upper half; a padding-set input reaches stage 1
    as a negative value, leaves it as ``−T1[..]`` (upper half: T1 has no zero), and stage 2 maps that to
    ``−0 = 0``: digit 0, valid bit 0. Stage 1 feeds two lookups, so concrete cannot fuse it into them."""
    space = 1 << IMPORT_BITS
    first = [[y if 1 <= y <= 1 << w else _OUT_OF_RANGE for y in range(space)] for w in widths]
    widest = 1 << max(widths)
    digit = [v - 1 if 1 <= v <= widest else 0 for v in range(space)]
    valid = [1 if 1 <= v <= widest else 0 for v in range(space)]
    return first, digit, valid


def _import(x, widths):
    """Stages 1 and 2 of :func:`import_tables` on one dealer's 5-bit digits: (digits, bits "valid"); 3 PBS
    per digit, 5-bit lookups (the widths of the imported values)."""
    fhe = _fhe()
    first, digit, valid = import_tables(widths)
    y = _hint(x, IMPORT_BITS)
    stage1 = _hint(fhe.LookupTable([fhe.LookupTable(t) for t in first])[y], IMPORT_BITS)
    return _hint(fhe.LookupTable(digit)[stage1], TLU_BITS), fhe.LookupTable(valid)[stage1]


def _radix(shape: "CircuitShape") -> Callable:
    """Formulation "radix": the rule on base-8 digits, so that no encrypted integer is wider than 4 bits and
    every PBS runs with the small parameters of a 4-bit lookup (design: docs/CIRCUIT.md). The returned
    function takes each dealer's digits (``report_digits``, values ``digit + 1``) as 5-bit native integers,
    what ``crypto.tfhers.to_native_digits`` makes of the imported ciphertexts, and checks every one."""
    n = shape.grid
    layout = shape.rate_layout
    rd = len(layout)
    top = rd - 1
    offsets = _offsets(layout)
    jd = shape.joint_digits
    volumes = list(range(1, n + 1))
    hurdle = shape.hurdle_digits
    g_top_bound = shape.hurdle_top_bound
    pairs = cut_pairs(n)
    pair_q = np.array([q for q, _ in pairs], dtype=np.int64)
    pair_big = np.array([big for _, big in pairs], dtype=np.int64)

    def threshold(h):
        """``G = c·h`` as rate-layout digits, linear in the hurdle's digits (``None``: a zero digit)."""
        g: list = [None] * rd
        for k, (_, column, scale) in enumerate(hurdle):
            g[column] = h[k] * scale
        return g

    widths = shape.digit_widths

    def rule(mm, rm):
        fhe = _fhe()
        with fhe.tag("import"):
            mm, valid_mm = _import(mm, widths)
            rm, valid_rm = _import(rm, widths)
        b = mm[0 : (n + 1) * rd].reshape((n + 1, rd))
        a = rm[0 : (n + 1) * rd].reshape((n + 1, rd))
        g_mm = threshold(mm[(n + 1) * rd :])
        g_rm = threshold(rm[(n + 1) * rd :])

        # 1. neighbour comparisons, one three-way comparison per step: a strict step (b̂_q < b̂_(q+1),
        # â_(q+1) < â_q) gives attainability, a reversed one (b̂_(q+1) < b̂_q or â_q < â_(q+1)) makes that
        # dealer's report invalid. step = STRICT, FLAT or REVERSED (codes chosen so that sums stay readable).
        lower = np.concatenate((b[0:n], a[1 : n + 1]))
        upper = np.concatenate((b[1 : n + 1], a[0:n]))
        with fhe.tag("steps"):
            step = _compare3([upper[:, i] for i in range(rd)], [lower[:, i] for i in range(rd)], layout,
                             codes=(REVERSED, FLAT, STRICT))
        with fhe.tag("invalid"):  # a digit out of range or a reversed step in b is MM's fault, in a RM's
            invalid_mm = _any([_any_code([step[i] for i in range(n)], REVERSED)]
                              + [1 - valid_mm[k] for k in range(len(widths))])
            invalid_rm = _any([_any_code([step[n + i] for i in range(n)], REVERSED)]
                              + [1 - valid_rm[k] for k in range(len(widths))])
            valid = _lut16([1, 0, 0])[_tlu_in(invalid_mm + invalid_rm, 2)]

        # 2. spreads s(Q) = â_Q − b̂_Q, Q = 1..N: low digits normalised, the top kept as t = s_top + 2**w_top.
        with fhe.tag("spreads"):
            s_low, s_top, s_top_bound = _borrow_chain(
                [a[:, i][1 : n + 1] for i in range(rd)], [b[:, i][1 : n + 1] for i in range(rd)], layout,
                digits=True,
            )
        # 3. hurdles (market.no_cut, [derived]): s(Q) >= c·h_mm, s(Q) >= c·h_rm, both reports valid: p(Q).
        with fhe.tag("hurdle_mm"):
            pass_mm = _at_least(s_low, s_top, s_top_bound, g_mm, g_top_bound, layout, valid=valid)
        with fhe.tag("hurdle_rm"):  # both tests and valid: the mm test's bit is this lookup's flag
            passes = _at_least(s_low, s_top, s_top_bound, g_rm, g_top_bound, layout, valid=pass_mm)

        # 4. J(Q) + 1 = Q·s(Q) + 1 as base-8 digits (Q inside the tables), for every Q: the no-cut test compares
        # deviations with it, the argmax ranks the survivors by it. A negative s(Q) gives garbage, harmlessly:
        # such a Q fails the hurdle test (c·h >= 0), so its test results and its J are masked out.
        s_digits = [(s_low[i], (1 << w) - 1, 0) for i, w in enumerate(layout[:top])] + [
            (s_top, s_top_bound, 1 << layout[top])]
        with fhe.tag("joint_digits"):
            jcols = _scaled_columns(s_digits, layout, volumes, jd, plus_one=True)
        with fhe.tag("joint_carries"):
            joint1 = [_hint(d, TLU_BITS) for d, _ in _normalize(jcols, [OUTPUT_BASE] * jd)]

        # 5. the no-cut test (market.no_cut, D2) for every deviation q < Q: BDmm gains by cutting to q iff
        # q·(â_Q − b̂_q) > J(Q), BDrm iff q·(â_q − b̂_Q) > J(Q). Per pair: the cross spread (borrow chain), its
        # product by the public q (tables), its digits (carries), a borrow chain against J(Q) + 1.
        fails: list = [[] for _ in range(n)]
        if pairs:
            for cross_upper, cross_lower in ((a[pair_big], b[pair_q]), (a[pair_q], b[pair_big])):  # mm, rm
                with fhe.tag("cut_spreads"):
                    x_low, x_top, x_top_bound = _borrow_chain(
                        [cross_upper[:, i] for i in range(rd)], [cross_lower[:, i] for i in range(rd)], layout,
                        digits=True)
                x_digits = [(x_low[i], (1 << w) - 1, 0) for i, w in enumerate(layout[:top])] + [
                    (x_top, x_top_bound, 1 << layout[top])]
                with fhe.tag("cut_products"):
                    pcols = _scaled_columns(x_digits, layout, pair_q.tolist(), jd)
                with fhe.tag("cut_carries"):
                    product = [d for d, _ in _normalize(pcols, [OUTPUT_BASE] * jd)]
                with fhe.tag("cut_compare"):  # borrow 1 iff q·x < J(Q) + 1: the deviation does not gain
                    holds = _borrow_chain(product, [d[pair_big - 1] for d in joint1], (RADIX_BITS,) * jd)
                for p, (_, big) in enumerate(pairs):
                    fails[big - 1].append(1 - holds[p])

        with fhe.tag("feasible"):  # Q = N is always attainable; Q < N needs a strict step on both sides
            counts = []
            for big in range(1, n + 1):
                bits = fails[big - 1]
                if len(bits) > TLU_MAX - 2 * REVERSED - 1:  # too many to add: one OR first
                    bits = [_any(bits)]
                count = (1 - passes[big - 1]) + (_sum(bits) if bits else 0)
                if big < n:
                    count = count + step[big] + step[n + big]
                counts.append(count)
            count = fhe.array(counts)
            feasible = _lut16([1] + [0] * TLU_MAX)[_tlu_in(count, TLU_MAX)]
        with fhe.tag("trade"):  # the survivors need not be a prefix once steps are flat: an OR over all Q
            trade = _any([feasible[i] for i in range(n)])

        # 6. J'(Q) = f·(J(Q) + 1): survivors have J' >= 1 > 0 = every other leaf's, so the argmax needs no
        # feasibility flag.
        with fhe.tag("joint_mask"):
            keep = _lut16([v >> 1 if v % 2 == 1 else 0 for v in range(16)])
            leaves = np.concatenate(tuple(_hint(keep[_flagged(d, feasible, 7)], TLU_BITS).reshape((n, 1))
                                          for d in joint1), axis=1)  # (N, jd)

        # 7. tournament on J' digits: the right (larger Q) subtree's winner is kept iff J'_R − J'_L >= 0 (ties
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

        # 8. one-hot winner (won every node on its path, and trade): Q digits and masked b̂ digits summed.
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

        return fhe.array([row([trade]), row([invalid_mm]), row([invalid_rm]), row(q_digits), row(b_sel), row(j_sel)])

    return rule

