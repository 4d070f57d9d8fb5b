"""Building blocks of the radix rule, on concrete tracers: lookups pinned to 4 bits, borrow chains, column
normalisation, threshold tests. Each docstring gives its PBS cost."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from crypto.circuit.shape import RADIX_BITS, TLU_BITS, TLU_MAX, _offsets


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
    """OR of encrypted 0/1 scalars: sums of at most 15 bits, each followed by one 4-bit lookup (pinned to 4 bits
    like every other lookup of the rule: under multi parameters a narrower one would open another partition)."""
    return _fold_bits(bits, lambda group: _lut16([0] + [1] * TLU_MAX)[_tlu_in(_sum(group), len(group))])


def _hint(value, bits: int):
    """Pin the width of ``value`` to at least ``bits``: inputsets rarely reach every intermediate's extreme,
    and a value beyond its assigned width overflows silently."""
    return _fhe().hint(value, bit_width=bits)


def _sum(items: list):
    """Integer sum; ``× 1`` first because concrete sizes ``bool + bool`` as a logical OR."""
    total = items[0] * 1
    for item in items[1:]:
        total = total + item * 1
    return total


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


def _per_element_nonzero(tables: list[list[int]], x):
    """``_per_element(tables)[x]`` without the lookups whose table is all zero (those elements are a linear 0):
    one PBS per element with a non-zero table, ``None`` if there is none."""
    live = [any(t) for t in tables]
    if not any(live):
        return None
    pieces, start = [], 0
    while start < len(tables):
        end = start
        while end < len(tables) and live[end] == live[start]:
            end += 1
        pieces.append(_per_element(tables[start:end])[x[start:end]] if live[start] else x[start:end] * 0)
        start = end
    return pieces[0] if len(pieces) == 1 else np.concatenate(tuple(pieces))


def _borrow_chain(xs: list, ys: list, layout, digits: bool = False):
    """Compare ``x`` and ``y`` given as digit columns (``xs[i]``, ``ys[i]`` for digit ``i`` of ``layout``).

    Digit ``i``: ``t = x_i − y_i − β + 2**w`` in ``[0, 2**(w+1))``; the borrow ``β' = [t < 2**w]`` is one lookup,
    the difference digit ``t mod 2**w = t + 2**w·β' − 2**w`` is linear (only if ``digits``; not for the top digit;
    [measured] its larger noise norm left concrete's parameters unchanged). Returns the
    borrow out of the top digit (``1`` iff ``x − y < 0``) unless ``digits``: then
    ``(low digits of x − y, the top's t offset by 2**w_top, its bound)`` (no lookup on the top digit).
    ``xs[i]`` or ``ys[i]`` may be ``None`` (a zero digit; not both)."""
    borrow = None
    low = []
    last = len(layout) - 1
    for i, width in enumerate(layout):
        base = 1 << width
        if xs[i] is None:  # a zero digit (e.g. a product's top column no element reaches)
            t = base - ys[i]
        else:
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


def _compare3(xs: list, ys: list, layout, codes: tuple[int, int, int]):
    """Three-way comparison of ``x`` and ``y`` (digit columns as in :func:`_borrow_chain`): ``codes[0]`` if
    ``x < y``, ``codes[1]`` if ``x == y``, ``codes[2]`` if ``x > y`` (each in ``[0, 15]``).

    Digit ``i``: the sign code ``[x_i > y_i] − [x_i < y_i] + 1`` in {0, 1, 2}, one lookup on
    ``x_i − y_i + 2**w − 1`` (a 1-bit digit's ``x_i − y_i + 1`` is that code already, linear); then pairs of codes
    (more significant ``hi``, less ``lo``) merge lexicographically, one lookup on ``3·hi + lo`` each, until two
    remain; the last merge's table gives ``codes`` directly. Layout (3, 3, 3, 1): 3 + 2 + 1 = 6 PBS, where the
    borrows of ``x − y`` and of ``y − x`` (strict and reversed, :func:`_borrow_chain` twice) cost 8."""
    merge = [hi if hi != 1 else lo for hi in range(3) for lo in range(3)]  # index 3·hi + lo
    signs = []
    for i, width in enumerate(layout):
        base = 1 << width
        d = xs[i] - ys[i] + (base - 1)  # in [0, 2·base − 2]
        if width == 1:
            signs.append(d)
        else:
            signs.append(_lut16([0 if v < base - 1 else 1 if v == base - 1 else 2 for v in range(2 * base - 1)])[
                _tlu_in(d, 2 * base - 2)])
    while len(signs) > 2:
        merged = [_lut16(merge)[_tlu_in(3 * signs[k + 1] + signs[k], 8)] for k in range(0, len(signs) - 1, 2)]
        signs = merged + signs[len(signs) - len(signs) % 2 :]
    if len(signs) == 2:
        return _lut16([codes[m] for m in merge])[_tlu_in(3 * signs[1] + signs[0], 8)]
    return _lut16(list(codes))[_tlu_in(signs[0], 2)]


def _any_code(codes: list, hit: int):
    """``1`` iff some encrypted code equals ``hit``, where every code is 0, 1 or ``hit``: a group of fewer than
    ``hit`` codes sums to at least ``hit`` iff it holds one, so groups of ``TLU_MAX // hit`` codes take one
    lookup each, then :func:`_any` of the group bits."""
    size = TLU_MAX // hit
    if not 1 <= size < hit:
        raise AssertionError(f"radix: code {hit} cannot be detected in sums")  # a bug in the caller's codes
    groups = [codes[i : i + size] for i in range(0, len(codes), size)]
    return _any([_lut16([1 if v >= hit else 0 for v in range(len(g) * hit + 1)])[_tlu_in(_sum(g), len(g) * hit)]
                 for g in groups])


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


def _scaled_columns(digits: list, layout, factors: list[int], columns: int, *, plus_one: bool = False):
    """Base-8 columns of ``factor·x (+ 1)`` per vector element (``factors[e]`` public, e.g. a volume), where
    ``x`` is given as ``digits[i] = (value, bound, zero_at)`` of ``layout`` (the top one may be kept offset:
    its table reads ``value − zero_at`` and treats a negative one as 0).

    Per digit one 4-bit table per element and piece: piece j of ``factor·x_i·2**shift`` is its octal digit j,
    except the last, which keeps the whole quotient once it is <= 15 (one piece saved); the public factor
    multiplies inside the table (no noise growth). Returns ``columns`` lists of ``(term, bound)`` for
    :func:`_normalize`; a piece that is zero for every element costs nothing."""
    out: list[list] = [[] for _ in range(columns)]
    offsets = _offsets(layout)
    for i, (x, x_bound, zero_at) in enumerate(digits):
        col0, shift = divmod(offsets[i], RADIX_BITS)
        x = _tlu_in(x, x_bound)

        def product(f, entry, i=i, zero_at=zero_at, shift=shift):
            v = (f * (entry - zero_at) << shift) if entry >= zero_at else 0
            return v + 1 if plus_one and i == 0 else v

        top = max(product(f, e) for f in factors for e in range(x_bound + 1))
        j = 0
        while col0 + j < columns:
            whole = (top >> (RADIX_BITS * j)) <= TLU_MAX or col0 + j == columns - 1
            tables = [[(product(f, e) >> (RADIX_BITS * j)) if whole else (product(f, e) >> (RADIX_BITS * j)) % 8
                       for e in range(x_bound + 1)] for f in factors]
            term = _per_element_nonzero(tables, x)
            if term is not None:
                out[col0 + j].append((term, max(max(t) for t in tables)))
            if whole:
                break
            j += 1
    return out


def _at_least(s_low: list, s_top, s_top_bound: int, t_digits: list, t_top_bound: int, layout, valid=None):
    """``1`` where the spread ``s`` (low digits ``s_low``, top kept as ``s_top + 2**w_top``) is >= the threshold
    ``t`` (digits ``t_digits`` of ``layout``, top digit in ``[0, t_top_bound]``), times the 0/1 ``valid`` if given
    (a validity bit or another test's result: the flag of the last lookup, no extra PBS while it fits).

    A borrow chain over the low digits (one PBS each), then one lookup on the top:
    ``v = s_top − t_top − γ + t_top_bound + 1 >= 0`` and ``s >= t`` iff ``v >= 2**w_top + t_top_bound + 1``.
    A ``t_digits`` entry may be ``None`` (a zero digit); the threshold may be one value for every element."""
    top = len(layout) - 1
    gamma = _borrow_chain(s_low, t_digits[:top], layout[:top]) if top else None
    v = s_top + (t_top_bound + 1) if t_digits[top] is None else s_top - t_digits[top] + (t_top_bound + 1)
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

