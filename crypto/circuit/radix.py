"""The selection rule (docs/MODEL.md §5) in formulation "radix": every encrypted integer is a digit of at most
4 bits. Design: docs/CIRCUIT.md."""
from __future__ import annotations

import functools
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


def _tagged(tag: str) -> Callable:
    """One step of the rule: the decorated function runs under ``fhe.tag(tag)``, so concrete counts its PBS
    under that name (:data:`STEPS`, ``CostReport.pbs_per_tag``). What a step's caller does between steps
    (reshapes, slices, gathers) stays untagged, as the graph has always had it."""
    if tag not in STEPS:
        raise AssertionError(f"radix: {tag!r} is not a step of STEPS")  # a bug in this module

    def decorate(step: Callable) -> Callable:
        @functools.wraps(step)
        def tagged(*args, **kwargs):
            with _fhe().tag(tag):
                return step(*args, **kwargs)

        tagged.tag = tag
        return tagged

    return decorate


def _keep_table(flag: int, shift: int = 0):
    """The 4-bit table on ``2·value + f`` that gives ``value << shift`` where ``f == flag``, else 0."""
    return _lut16([(v >> 1) << shift if v % 2 == flag else 0 for v in range(16)])


def _signed_digits(difference: tuple, layout) -> list[tuple]:
    """A difference from ``_borrow_chain(..., digits=True)`` as ``_scaled_columns`` digits ``(value, bound,
    zero_at)``: the low digits as they are, the top one offset by ``2**w_top``. No graph node."""
    low, top, top_bound = difference
    return [(low[i], (1 << w) - 1, 0) for i, w in enumerate(layout[:-1])] + [(top, top_bound, 1 << layout[-1])]


def _columns(x, count: int) -> list:
    """Column ``i`` of a 2-D tracer, for ``i < count`` (one graph node each)."""
    return [x[:, i] for i in range(count)]


@_tagged("import")
def import_reports(shape: CircuitShape, mm, rm) -> tuple:
    """Both dealers' 5-bit digits through :func:`_import`: (mm's digits, mm's valid bits, rm's, rm's)."""
    mm, valid_mm = _import(mm, shape.digit_widths)
    rm, valid_rm = _import(rm, shape.digit_widths)
    return mm, valid_mm, rm, valid_rm


def _threshold(shape: CircuitShape, h) -> list:
    """``G = c·h`` as rate-layout digits, linear in the hurdle's digits (``None``: a zero digit)."""
    g: list = [None] * len(shape.rate_layout)
    for k, (_, column, scale) in enumerate(shape.hurdle_digits):
        g[column] = h[k] * scale
    return g


def _split_reports(shape: CircuitShape, mm, rm) -> tuple:
    """Untagged: the schedules ``b̂``, ``â`` as ``(N + 1, digits)`` arrays and the two thresholds ``G``."""
    n, rd = shape.grid, len(shape.rate_layout)
    b = mm[0 : (n + 1) * rd].reshape((n + 1, rd))
    a = rm[0 : (n + 1) * rd].reshape((n + 1, rd))
    return b, a, _threshold(shape, mm[(n + 1) * rd :]), _threshold(shape, rm[(n + 1) * rd :])


@_tagged("steps")
def neighbour_steps(shape: CircuitShape, lower, upper):
    """1. One three-way comparison per neighbour step: a strict step (b̂_q < b̂_(q+1), â_(q+1) < â_q) gives
    attainability, a reversed one (b̂_(q+1) < b̂_q or â_q < â_(q+1)) makes that dealer's report invalid.
    ``lower``/``upper`` hold b's N steps, then a's; each code is STRICT, FLAT or REVERSED."""
    rd = len(shape.rate_layout)
    return _compare3(_columns(upper, rd), _columns(lower, rd), shape.rate_layout, codes=(REVERSED, FLAT, STRICT))


def _dealer_invalid(steps: list, valid, count: int):
    """A dealer's report is invalid if one of its steps is reversed or one of its digits is out of range."""
    return _any([_any_code(steps, REVERSED)] + [1 - valid[k] for k in range(count)])


@_tagged("invalid")
def invalid_flags(shape: CircuitShape, step, valid_mm, valid_rm) -> tuple:
    """A digit out of range or a reversed step in b̂ is MM's fault, in â RM's: (invalid_mm, invalid_rm, both
    valid)."""
    n, count = shape.grid, shape.digit_count
    invalid_mm = _dealer_invalid([step[i] for i in range(n)], valid_mm, count)
    invalid_rm = _dealer_invalid([step[n + i] for i in range(n)], valid_rm, count)
    return invalid_mm, invalid_rm, _lut16([1, 0, 0])[_tlu_in(invalid_mm + invalid_rm, 2)]


@_tagged("spreads")
def spreads(shape: CircuitShape, b, a) -> tuple:
    """2. s(Q) = â_Q − b̂_Q, Q = 1..N: low digits normalised, the top kept as t = s_top + 2**w_top."""
    n, layout = shape.grid, shape.rate_layout
    return _borrow_chain([a[:, i][1 : n + 1] for i in range(len(layout))],
                         [b[:, i][1 : n + 1] for i in range(len(layout))], layout, digits=True)


@_tagged("hurdle_mm")
def hurdle_mm(shape: CircuitShape, spread: tuple, g_mm: list, valid):
    """3. (market.no_cut, [derived]) s(Q) >= c·h_mm, times "both reports valid"."""
    return _at_least(*spread, g_mm, shape.hurdle_top_bound, shape.rate_layout, valid=valid)


@_tagged("hurdle_rm")
def hurdle_rm(shape: CircuitShape, spread: tuple, g_rm: list, pass_mm):
    """s(Q) >= c·h_rm, times the mm test's bit (this lookup's flag): p(Q), both tests on valid reports."""
    return _at_least(*spread, g_rm, shape.hurdle_top_bound, shape.rate_layout, valid=pass_mm)


@_tagged("joint_digits")
def joint_digits(shape: CircuitShape, spread_digits: list) -> list:
    """4. J(Q) + 1 = Q·s(Q) + 1 as base-8 column terms (Q inside the tables), for every Q: the no-cut test
    compares deviations with it, the argmax ranks the survivors by it. A negative s(Q) gives garbage,
    harmlessly: such a Q fails the hurdle test (c·h >= 0), so its test results and its J are masked out."""
    return _scaled_columns(spread_digits, shape.rate_layout, list(range(1, shape.grid + 1)), shape.joint_digits,
                           plus_one=True)


@_tagged("joint_carries")
def joint_carries(shape: CircuitShape, columns: list) -> list:
    """J(Q) + 1's column sums reduced to base-8 digits, one vector over Q per digit."""
    return [_hint(d, TLU_BITS) for d, _ in _normalize(columns, [OUTPUT_BASE] * shape.joint_digits)]


@_tagged("cut_spreads")
def cut_spreads(shape: CircuitShape, upper, lower) -> tuple:
    """The cross spreads of one side's deviations (a borrow chain per pair, digits as :func:`spreads`)."""
    rd = len(shape.rate_layout)
    return _borrow_chain(_columns(upper, rd), _columns(lower, rd), shape.rate_layout, digits=True)


@_tagged("cut_products")
def cut_products(shape: CircuitShape, cross_digits: list, deviations: np.ndarray) -> list:
    """q · cross spread per pair as base-8 column terms (the public q inside the tables)."""
    return _scaled_columns(cross_digits, shape.rate_layout, deviations.tolist(), shape.joint_digits)


@_tagged("cut_carries")
def cut_carries(shape: CircuitShape, columns: list) -> list:
    """The products' column sums reduced to base-8 digits."""
    return [d for d, _ in _normalize(columns, [OUTPUT_BASE] * shape.joint_digits)]


@_tagged("cut_compare")
def cut_compare(shape: CircuitShape, product: list, joint: list, volumes: np.ndarray):
    """Per pair: borrow 1 iff q·x < J(Q) + 1, i.e. the deviation does not gain."""
    return _borrow_chain(product, [d[volumes - 1] for d in joint], (RADIX_BITS,) * shape.joint_digits)


def no_cut_failures(shape: CircuitShape, b, a, joint: list) -> list[list]:
    """5. The no-cut test (market.no_cut, D2) for every deviation q < Q: BDmm gains by cutting to q iff
    q·(â_Q − b̂_q) > J(Q), BDrm iff q·(â_q − b̂_Q) > J(Q). Per side, all pairs at once: the cross spread, its
    product by the public q, its digits, a borrow chain against J(Q) + 1. Returns per Q its "a deviation
    gains" bits (mm's pairs, then rm's)."""
    pairs = cut_pairs(shape.grid)
    fails: list = [[] for _ in range(shape.grid)]
    if not pairs:
        return fails
    pair_q = np.array([q for q, _ in pairs], dtype=np.int64)
    pair_big = np.array([big for _, big in pairs], dtype=np.int64)
    for upper, lower in ((a[pair_big], b[pair_q]), (a[pair_q], b[pair_big])):  # mm, rm
        cross = cut_spreads(shape, upper, lower)
        product = cut_carries(shape, cut_products(shape, _signed_digits(cross, shape.rate_layout), pair_q))
        holds = cut_compare(shape, product, joint, pair_big)
        for p, (_, big) in enumerate(pairs):
            fails[big - 1].append(1 - holds[p])
    return fails


@_tagged("feasible")
def feasible(shape: CircuitShape, fails: list[list], passes, step):
    """f(Q): Q survives (both hurdles, no deviation gains) and is attainable. Q = N is always attainable;
    Q < N needs a strict step on both sides."""
    n = shape.grid
    counts = []
    for big in range(1, n + 1):
        bits = fails[big - 1]
        if len(bits) > TLU_MAX - 2 * REVERSED - 1:  # too many to add: one OR first
            bits = [_any(bits)]
        count = (1 - passes[big - 1]) + (_sum(bits) if bits else 0)
        if big < n:
            count = count + step[big] + step[n + big]
        counts.append(count)
    return _lut16([1] + [0] * TLU_MAX)[_tlu_in(_fhe().array(counts), TLU_MAX)]


@_tagged("trade")
def trade(shape: CircuitShape, feasible):
    """The survivors need not be a prefix once steps are flat: an OR over all Q."""
    return _any([feasible[i] for i in range(shape.grid)])


@_tagged("joint_mask")
def joint_mask(shape: CircuitShape, joint: list, feasible):
    """6. J'(Q) = f·(J(Q) + 1), shape (N, digits): survivors have J' >= 1 > 0 = every other leaf's, so the
    argmax needs no feasibility flag."""
    keep = _keep_table(1)
    return np.concatenate(tuple(_hint(keep[_flagged(d, feasible, 7)], TLU_BITS).reshape((shape.grid, 1))
                                for d in joint), axis=1)


@_tagged("tournament_compare")
def tournament_compare(shape: CircuitShape, left, right):
    """Per node: 1 iff the left subtree's winner wins, i.e. J'_R − J'_L < 0 (ties to the larger Q)."""
    jd = shape.joint_digits
    return _borrow_chain(_columns(right, jd), _columns(left, jd), (RADIX_BITS,) * jd)


@_tagged("tournament_select")
def tournament_select(left, right, left_wins):
    """Per node: the winner's J' digits, a two-table multiplexer per digit on ``2·digit + flag``."""
    return _keep_table(1)[_flagged(left, left_wins, 7)] + _keep_table(0)[_flagged(right, left_wins, 7)]


def tournament(shape: CircuitShape, leaves) -> tuple[list[list], list]:
    """7. Tournament on J' digits: the right (larger Q) subtree's winner is kept iff J'_R − J'_L >= 0 (a
    non-survivor has J' = 0 and never beats a survivor). Returns per leaf its "won this node" bits and the
    winner's J' digits (J + 1 when trade, 0 when none survives)."""
    level = leaves
    groups = [[q] for q in range(shape.grid)]  # leaves under each position of the level
    won: list[list] = [[] for _ in range(shape.grid)]
    while len(groups) > 1:
        m = len(groups)
        k = m // 2
        left, right = level[0 : 2 * k : 2], level[1 : 2 * k : 2]
        left_wins = tournament_compare(shape, left, right)
        kept = tournament_select(left, right, left_wins.reshape((k, 1)))
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
    return won, [level[0, i] for i in range(shape.joint_digits)]


@_tagged("one_hot")
def one_hot(shape: CircuitShape, won: list[list], trade):
    """8. The one-hot winner: leaf Q won every node on its path, and trade."""
    n = shape.grid
    counts = _fhe().array([_sum(won[q] + [trade]) for q in range(n)])
    depth = [len(won[q]) + 1 for q in range(n)]
    count_in = _tlu_in(counts, max(depth))
    return _per_element([[1 if v == depth[q] else 0 for v in range(depth[q] + 1)] for q in range(n)])[count_in]


def _volume_digits(shape: CircuitShape, winner) -> list:
    """Q_sel's digits, linear in the one-hot winner (leaf Q weighs it by its own digit): no lookup."""
    return [np.sum(winner * np.array([((q + 1) >> (RADIX_BITS * j)) % OUTPUT_BASE for q in range(shape.grid)]))
            for j in range(shape.volume_digits)]


@_tagged("output_rate")
def output_rate(shape: CircuitShape, b, winner) -> list:
    """b̂[Q_sel]'s base-8 digits: each rate digit masked by the winner bit, summed over Q into its column."""
    n = shape.grid
    offsets = _offsets(shape.rate_layout)
    columns: list[list] = [[] for _ in range(shape.joint_digits)]
    for i in range(len(shape.rate_layout)):
        column, shift = divmod(offsets[i], RADIX_BITS)
        masked = _keep_table(1, shift)[_flagged(b[:, i][1 : n + 1], winner, 7)]
        columns[column].append(np.sum(masked))
    return [_sum(column) if column else None for column in columns]


def _output(shape: CircuitShape, trade, invalid_mm, invalid_rm, q_digits: list, b_sel: list, j_sel: list):
    """The output rows ``[trade, invalid_mm, invalid_rm, Q_sel, b̂_sel, J'_sel]``, each padded to D digits."""
    fhe = _fhe()
    zero = trade * 0  # an encrypted 0 (fhe.array needs tracers, not Python ints)

    def row(digits):
        return [d if d is not None else zero for d in digits] + [zero] * (shape.joint_digits - len(digits))

    return fhe.array([row([trade]), row([invalid_mm]), row([invalid_rm]), row(q_digits), row(b_sel), row(j_sel)])


def _rule(shape: CircuitShape, mm, rm):
    """The rule, step by step (one function per ``fhe.tag``; the graph is the one the fingerprint test pins)."""
    n = shape.grid
    mm, valid_mm, rm, valid_rm = import_reports(shape, mm, rm)
    b, a, g_mm, g_rm = _split_reports(shape, mm, rm)
    step = neighbour_steps(shape, np.concatenate((b[0:n], a[1 : n + 1])), np.concatenate((b[1 : n + 1], a[0:n])))
    invalid_mm, invalid_rm, valid = invalid_flags(shape, step, valid_mm, valid_rm)
    spread = spreads(shape, b, a)
    passes = hurdle_rm(shape, spread, g_rm, hurdle_mm(shape, spread, g_mm, valid))
    joint = joint_carries(shape, joint_digits(shape, _signed_digits(spread, shape.rate_layout)))
    survivors = feasible(shape, no_cut_failures(shape, b, a, joint), passes, step)
    any_trade = trade(shape, survivors)
    won, j_sel = tournament(shape, joint_mask(shape, joint, survivors))
    winner = one_hot(shape, won, any_trade)
    q_digits = _volume_digits(shape, winner)
    return _output(shape, any_trade, invalid_mm, invalid_rm, q_digits, output_rate(shape, b, winner), j_sel)


def _radix(shape: CircuitShape) -> Callable:
    """Formulation "radix": the rule on base-8 digits, so that no encrypted integer is wider than 4 bits and
    every PBS runs with the small parameters of a 4-bit lookup (design: docs/CIRCUIT.md). The returned
    function takes each dealer's digits (``report_digits``, values ``digit + 1``) as 5-bit native integers,
    what ``crypto.tfhers.to_native_digits`` makes of the imported ciphertexts, and checks every one."""

    def rule(mm, rm):  # concrete reads the inputs' names from this signature
        return _rule(shape, mm, rm)

    return rule
