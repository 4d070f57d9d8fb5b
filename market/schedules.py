"""Client schedules of the repo market, stored as inverse schedules on an integer volume grid.

Aronoff & Townsend (arXiv 2505.22940), MODEL.md §2. On the volume grid ``Q = 0..N``:

* ``b[Q]`` is the lowest rate (bp) at which the money-market fund MM lends ``Q`` units — nondecreasing;
* ``a[Q]`` is the highest rate (bp) at which the repo borrower RM borrows ``Q`` units — nonincreasing.

The direct schedules follow: ``D(r) = max{Q : b[Q] <= r}`` (0 if none), ``S(r) = max{Q : a[Q] >= r}``
(0 if none). Rates are positive integers in basis points, volumes integer units: nothing here is a float,
because schedules are hashed, encrypted and put on chain.

Linear family on the integer grid [derived]. The continuous schedules ``D(r) = alpha_d (r - r_lo)+`` and
``S(r) = alpha_s (r_hi - r)+`` are floored to whole units, ``D(r) = floor(alpha_d (r - r_lo)+)``, and the
inverse is the lowest (highest) integer rate that reaches the volume::

    b[Q] = min{r integer >= r_lo : D(r) >= Q} = r_lo + ceil(Q / alpha_d)
    a[Q] = max{r integer <= r_hi : S(r) >= Q} = r_hi - ceil(Q / alpha_s)

so ``b[0] = r_lo`` and ``a[0] = r_hi``. With ``alpha = 1`` this is ``b[Q] = r_lo + Q`` exactly. With
``alpha > 1`` several volumes share a rate (a flat run of ``b``); ``D`` then jumps over the inner volumes of
the run, which are not attainable as a client's accepted volume (see :meth:`Schedules.attainable`).
``alpha`` is taken exactly: ints, :class:`fractions.Fraction`, or a float read through its decimal text
(``0.5`` is 1/2).

A client shock ``theta`` (integer bp) shifts its client's whole schedule — ``r_lo`` or ``r_hi`` in the linear
family — and is known only to that client's dealer (:func:`apply_theta`).
"""
from __future__ import annotations

import csv
import json
import numbers
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from common import strict_json
from common.vocabulary import Side
from market.errors import MarketError
from market.limits import MAX_ANALYSIS_GRID, MAX_RATE_BP

MAX_SLOPE_EXPONENT = 30  # [decided] slopes are written like 1, 0.5, 1/3 or 2e-3

__all__ = [
    "ScheduleError",
    "Schedules",
    "make_schedules",
    "linear_schedules",
    "load_schedules",
    "apply_theta",
    "as_exact_fraction",
]


class ScheduleError(MarketError):
    """A schedule is malformed; the message names the field, the index (row Q) and the value."""


def _is_integer(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _integer_rates(name: str, values) -> np.ndarray:
    """``values`` as an int64 array, or ScheduleError naming the first non-integer element."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ScheduleError(f"{name}: expected a one-dimensional list of rates, got shape {values.shape}")
        if values.dtype.kind in "iu":
            return values.astype(np.int64)
        items = values.tolist()
    elif isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ScheduleError(f"{name}: expected a list of integer rates in bp, got {type(values).__name__}")
    else:
        items = list(values)
    for q, value in enumerate(items):
        if not _is_integer(value):
            raise ScheduleError(f"{name}[{q}] = {value!r} (row Q={q}): rates must be integers in bp")
    return np.asarray([int(v) for v in items], dtype=np.int64)


def _check_rates(name: str, rates: np.ndarray, direction: int, meaning: str) -> None:
    """Positive, and monotone in ``direction`` (+1 nondecreasing, -1 nonincreasing)."""
    bad = np.flatnonzero(rates <= 0)
    if bad.size:
        q = int(bad[0])
        raise ScheduleError(f"{name}[{q}] = {int(rates[q])} (row Q={q}): rates must be positive bp")
    steps = direction * np.diff(rates)
    bad = np.flatnonzero(steps < 0)
    if bad.size:
        q = int(bad[0]) + 1
        word = "nondecreasing" if direction > 0 else "nonincreasing"
        relation = "<" if direction > 0 else ">"
        raise ScheduleError(
            f"{name}[{q}] = {int(rates[q])} {relation} {name}[{q - 1}] = {int(rates[q - 1])} (row Q={q}): "
            f"{name} ({meaning}) must be {word} in Q"
        )


@dataclass(frozen=True, eq=False)
class Schedules:
    """Inverse client schedules on the volume grid ``Q = 0..N`` (validated, read-only int64 arrays).

    ``b[Q]``: MM's lowest lend rate for ``Q`` (nondecreasing); ``a[Q]``: RM's highest borrow rate for ``Q``
    (nonincreasing); rates in bp. Build with :func:`make_schedules`, :func:`linear_schedules` or
    :func:`load_schedules`; direct construction validates too.
    """

    b: np.ndarray
    a: np.ndarray

    def __post_init__(self) -> None:
        b = _integer_rates("b", self.b)
        a = _integer_rates("a", self.a)
        if b.size == 0 or a.size == 0:
            empty = "b" if b.size == 0 else "a"
            raise ScheduleError(f"{empty}: empty schedule; the volume grid needs Q = 0..N with N >= 1")
        if b.size != a.size:
            raise ScheduleError(
                f"b has {b.size} rows and a has {a.size}: both must cover the same volume grid Q = 0..N"
            )
        if b.size < 2:
            raise ScheduleError("b, a: a single row (Q = 0) is an empty grid; need Q = 0..N with N >= 1")
        _check_rates("b", b, +1, "MM's lowest lend rate")
        _check_rates("a", a, -1, "RM's highest borrow rate")
        b.setflags(write=False)
        a.setflags(write=False)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "a", a)

    @property
    def grid(self) -> int:
        """N, the largest volume on the grid."""
        return int(self.b.size - 1)

    @property
    def volumes(self) -> np.ndarray:
        """The volume grid ``0..N``."""
        return np.arange(self.b.size, dtype=np.int64)

    @property
    def spread(self) -> np.ndarray:
        """``s(Q) = a[Q] - b[Q]`` (bp): the client spread on the matched locus (MODEL.md §4)."""
        return self.a - self.b

    @property
    def joint_profit(self) -> np.ndarray:
        """``J(Q) = s(Q)·Q`` (bp·units): joint dealer profit at the matched point of volume Q."""
        return self.spread * self.volumes

    @property
    def attainable(self) -> np.ndarray:
        """Q is attainable iff both clients accept exactly Q at the locus rates: ``D(b[Q]) = S(a[Q]) = Q``.

        [derived] Equivalently ``b[Q] < b[Q+1]`` and ``a[Q] > a[Q+1]`` (always true at Q = N). Inside a
        flat run of a schedule the client jumps to the run's end, so only attainable volumes are matched
        profiles of the dealer game.
        """
        last = np.ones(1, dtype=bool)
        return np.concatenate([np.diff(self.b) > 0, last]) & np.concatenate([np.diff(self.a) < 0, last])

    @property
    def strict(self) -> bool:
        """Every volume is attainable (no flat runs): the paper's setting, required of contract reports."""
        return bool(self.attainable.all())

    def lend_volume(self, rates) -> np.ndarray:
        """``D(r) = max{Q : b[Q] <= r}`` (0 if none): what MM lends at rate r (vectorised)."""
        count = np.searchsorted(self.b, np.asarray(rates, dtype=np.int64), side="right")
        return np.maximum(count - 1, 0).astype(np.int64)

    def borrow_volume(self, rates) -> np.ndarray:
        """``S(r) = max{Q : a[Q] >= r}`` (0 if none): what RM borrows at rate r (vectorised)."""
        count = np.searchsorted(-self.a, -np.asarray(rates, dtype=np.int64), side="right")
        return np.maximum(count - 1, 0).astype(np.int64)

    def as_dict(self) -> dict:
        """JSON form ``{"b": [...], "a": [...]}`` (ints), the format :func:`load_schedules` reads."""
        return {"b": [int(v) for v in self.b], "a": [int(v) for v in self.a]}

    def __eq__(self, other) -> bool:
        if not isinstance(other, Schedules):
            return NotImplemented
        return np.array_equal(self.b, other.b) and np.array_equal(self.a, other.a)

    def __hash__(self) -> int:
        return hash((self.b.tobytes(), self.a.tobytes()))

    def __repr__(self) -> str:
        return f"Schedules(N={self.grid}, b=[{self.b[0]}..{self.b[-1]}], a=[{self.a[0]}..{self.a[-1]}])"


def make_schedules(b, a) -> Schedules:
    """Validated :class:`Schedules` from two integer sequences of length N+1 (N >= 1).

    Raises :class:`ScheduleError` naming the field, row and value for: non-integers, zero or negative
    rates, non-monotone rows, mismatched lengths, an empty grid.
    """
    return Schedules(b=_integer_rates("b", b), a=_integer_rates("a", a))


def as_exact_fraction(name: str, value) -> Fraction:
    """A positive slope as an exact Fraction (a float is read through its shortest decimal text)."""
    if isinstance(value, (bool, np.bool_)):
        raise ScheduleError(f"{name} = {value!r}: expected a positive number")
    if isinstance(value, (numbers.Rational, np.integer)):
        frac = Fraction(int(value)) if isinstance(value, np.integer) else Fraction(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value):
        frac = Fraction(repr(float(value)))
    elif isinstance(value, str):
        exponent = re.search(r"[eE]\s*([+-]?\d+)", value)
        if exponent and abs(int(exponent.group(1))) > MAX_SLOPE_EXPONENT:  # Fraction would build 10**exponent
            raise ScheduleError(f"{name} = {value!r}: exponent beyond ±{MAX_SLOPE_EXPONENT}")
        try:
            frac = Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise ScheduleError(f"{name} = {value!r}: expected a positive number") from None
    else:
        raise ScheduleError(f"{name} = {value!r}: expected a positive number")
    if frac <= 0:
        raise ScheduleError(f"{name} = {value!r}: must be positive")
    return frac


def linear_schedules(r_lo: int, r_hi: int, alpha_d, alpha_s, grid: int) -> Schedules:
    """The linear family ``D(r) = floor(alpha_d (r - r_lo)+)``, ``S(r) = floor(alpha_s (r_hi - r)+)``.

    Inverse on the grid [derived]: ``b[Q] = r_lo + ceil(Q / alpha_d)``, ``a[Q] = r_hi - ceil(Q / alpha_s)``,
    ``Q = 0..grid`` (module docstring). Raises :class:`ScheduleError` for a bad parameter, or when the grid
    reaches so far that some ``a[Q] <= 0``.
    """
    for name, value in (("r_lo", r_lo), ("r_hi", r_hi), ("grid", grid)):
        if not _is_integer(value):
            raise ScheduleError(f"{name} = {value!r}: must be an integer")
    if r_lo <= 0:
        raise ScheduleError(f"r_lo = {r_lo}: must be a positive rate in bp")
    if r_hi <= r_lo:
        raise ScheduleError(f"r_hi = {r_hi}: must exceed r_lo = {r_lo}")
    if grid < 1:
        raise ScheduleError(f"grid = {grid}: need N >= 1")
    slope_d = as_exact_fraction("alpha_d", alpha_d)
    slope_s = as_exact_fraction("alpha_s", alpha_s)
    # ceil(Q / (p/d)) = ceil(Q d / p), in Python integers: a tiny slope makes the steps astronomically large,
    # which must be refused by name rather than overflow int64
    steps_d = [-((-q * slope_d.denominator) // slope_d.numerator) for q in range(int(grid) + 1)]
    steps_s = [-((-q * slope_s.denominator) // slope_s.numerator) for q in range(int(grid) + 1)]
    if int(r_lo) + steps_d[-1] > MAX_RATE_BP:
        raise ScheduleError(f"alpha_d = {alpha_d!r}: b[{grid}] = r_lo + ceil({grid} / alpha_d) exceeds "
                            f"{MAX_RATE_BP} bp (market.limits); use a larger alpha_d or a smaller grid")
    a_list = [int(r_hi) - step for step in steps_s]
    if a_list[-1] <= 0:
        first = next(q for q, v in enumerate(a_list) if v <= 0)
        shown = a_list[first] if a_list[first] > -10**12 else f"a negative number of {len(str(-a_list[first]))} digits"
        raise ScheduleError(
            f"a[{first}] = {shown} (row Q={first}): grid = {grid} reaches past S's zero rate; "
            f"use a smaller grid, a larger r_hi or a larger alpha_s"
        )
    b = np.array([int(r_lo) + step for step in steps_d], dtype=np.int64)
    return Schedules(b=b, a=np.array(a_list, dtype=np.int64))


def apply_theta(schedules: Schedules, side: Side, theta: int) -> Schedules:
    """Client shock: shift one client's whole schedule by ``theta`` bp.

    ``side="mm"`` shifts MM's ``b`` (in the linear family: ``r_lo + theta``), ``side="rm"`` shifts RM's ``a``
    (``r_hi + theta``). Only that client's dealer observes ``theta`` [decided: additive level shift].
    """
    if not _is_integer(theta):
        raise ScheduleError(f"theta = {theta!r}: must be an integer (bp)")
    if side == Side.MM:
        return Schedules(b=schedules.b + int(theta), a=schedules.a)
    if side == Side.RM:
        return Schedules(b=schedules.b, a=schedules.a + int(theta))
    raise ScheduleError(f"side = {side!r}: must be 'mm' or 'rm'")


def _parse_int(field: str, row: int, text: str, where: str) -> int:
    if isinstance(text, str) and len(text.strip().lstrip("+-")) > strict_json.MAX_INT_DIGITS:
        raise ScheduleError(f"{where}: {field} (row Q={row}) is a number of {len(text.strip().lstrip('+-'))} "
                            f"digits ({text.strip()[:20]}...); at most {strict_json.MAX_INT_DIGITS} digits")
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        shown = text if not isinstance(text, str) or len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"
        raise ScheduleError(f"{where}: {field} = {shown!r} (row Q={row}): must be an integer") from None


MAX_SCHEDULE_FILE_BYTES = 1 << 20  # [decided] 4001 rates of 7 digits take about 32 KB
MAX_JSON_DEPTH = 8  # [decided] a schedule needs 2 levels; json.loads recurses per level


def load_schedules(path) -> Schedules:
    """Read schedules from JSON ``{"b": [...], "a": [...]}`` or CSV with header ``Q,b,a`` (rows Q = 0..N).

    Errors are :class:`ScheduleError` with the file name, the field and the row. Besides the schedule's own
    rules the file must be a regular file of UTF-8 text of at most ``MAX_SCHEDULE_FILE_BYTES``, JSON nested no
    deeper than ``MAX_JSON_DEPTH``, the grid within ``0..MAX_ANALYSIS_GRID`` and every rate in
    ``1..MAX_RATE_BP`` (market.limits) -- a larger integer would overflow the int64 payoff arithmetic silently.
    """
    path = Path(path)
    where = str(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a device or a pipe could be endless or block forever
            raise ScheduleError(f"{where}: not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCHEDULE_FILE_BYTES + 1)
    except OSError as exc:
        raise ScheduleError(f"{where}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_SCHEDULE_FILE_BYTES:
        raise ScheduleError(f"{where}: larger than {MAX_SCHEDULE_FILE_BYTES} bytes; a schedule of "
                            f"{MAX_ANALYSIS_GRID + 1} rates needs far less")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScheduleError(f"{where}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    if path.suffix.lower() == ".csv":
        b, a = _csv_rates(text, where)
    else:
        b, a = _json_rates(text, where)
    try:
        schedules = make_schedules(b, a)
    except OverflowError:
        big = next((t for t in re.findall(r"-?\d+", text) if not -MAX_RATE_BP <= int(t) <= MAX_RATE_BP), "?")
        raise ScheduleError(f"{where}: rate {big}: rates must be in 1..{MAX_RATE_BP} bp") from None
    except ScheduleError as exc:
        raise ScheduleError(f"{where}: {exc}") from None
    if schedules.grid > MAX_ANALYSIS_GRID:
        raise ScheduleError(f"{where}: volume grid 0..{schedules.grid} exceeds 0..{MAX_ANALYSIS_GRID}")
    high = int(max(schedules.b.max(), schedules.a.max()))
    if high > MAX_RATE_BP:
        raise ScheduleError(f"{where}: rate {high} bp exceeds {MAX_RATE_BP} bp")
    return schedules


def _csv_rates(text: str, where: str) -> tuple[list, list]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if header[:3] != ["Q", "b", "a"] or len(header) != 3:
        raise ScheduleError(f"{where}: CSV header must be exactly Q,b,a (got {','.join(header) or 'none'})")
    b, a = [], []
    for expected, row in enumerate(reader):
        q = _parse_int("Q", expected, row["Q"], where)
        if q != expected:
            raise ScheduleError(f"{where}: Q = {q} on data row {expected + 1}: rows must list Q = 0, 1, 2, ...")
        b.append(_parse_int("b", q, row["b"], where))
        a.append(_parse_int("a", q, row["a"], where))
    return b, a


def _json_rates(text: str, where: str) -> tuple[list, list]:
    depth = deepest = 0
    for ch in text:  # json.loads recurses per level: refuse deep nesting before it does
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise ScheduleError(f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep; expected "
                                    '{"b": [...], "a": [...]}')
        elif ch in "]}":
            depth -= 1
    try:
        doc = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScheduleError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except strict_json.JsonInputError as exc:
        raise ScheduleError(f"{where}: {exc}") from None
    if isinstance(doc, dict):  # the sizes and ranges first, so the message names the value, not an overflow
        for name in ("b", "a"):
            values = doc.get(name)
            if isinstance(values, list):
                if len(values) > MAX_ANALYSIS_GRID + 1:
                    raise ScheduleError(f"{where}: {name} has {len(values)} rates; the volume grid is "
                                        f"limited to 0..{MAX_ANALYSIS_GRID}")
                for q, v in enumerate(values):
                    if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= MAX_RATE_BP:
                        raise ScheduleError(f"{where}: {name}[{q}] = {v}: rates must be in 1..{MAX_RATE_BP} bp")
    if not isinstance(doc, dict) or "b" not in doc or "a" not in doc:
        raise ScheduleError(f"{where}: expected a JSON object with lists \"b\" and \"a\"")
    b, a = doc["b"], doc["a"]
    for name, values in (("b", b), ("a", a)):
        if not isinstance(values, list):
            raise ScheduleError(f"{where}: \"{name}\" must be a list of integer rates in bp")
    return b, a
