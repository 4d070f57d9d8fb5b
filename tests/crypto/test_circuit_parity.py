"""Parity of the selection circuit (simulation mode) with the plaintext reference, 800 strictly monotone report
pairs (400 at N = 4 in margin mode, 400 at N = 3 in spread mode), 500 weakly monotone ones against the
exhaustive enumeration, smaller sweeps for other grids and rate widths (radix digit layouts), and random digit
vectors: whatever digits a dealer encrypts, the output is the rule applied to the report they spell.

Reference: :func:`market.selection.select_equilibrium` with the O(N²) equilibrium filter on; for valid
(strictly monotone) reports the test also checks that the filter is redundant (D10). Non-monotone
reports must raise the circuit's ``invalid`` flag and give no trade.
"""
from __future__ import annotations

import numpy as np
import pytest

from crypto.circuit import SelectionOutput
from market.no_cut import select_by_thresholds
from market.schedules import make_schedules
from market.selection import NO_TRADE, select_equilibrium
from market.terms import MarketTerms

BASE = 100


def _cases(grid: int, max_offset: int, max_hurdle: int, count: int, seed: int):
    """Valid report pairs: random, narrow spreads (ties, zero spreads, hurdles biting), extremes."""
    rng = np.random.default_rng(seed)
    up = np.arange(grid + 1)
    fixed = [
        (up, max_offset - up, 0, 0),  # widest spreads, largest offsets
        (up, up[::-1] + 0, 0, 0),  # spreads grid-2Q: zero and negative spreads
        (up, max_offset - up, max_hurdle, max_hurdle),  # max hurdles
        (max_offset - grid + up, max_offset - up, 0, 0),  # equal rates at Q = N (zero spread), max values
        (up, 2 * grid - up, 1, 0),  # small spreads, all filtered at higher Q
        (up, up[::-1] + 1, max_hurdle, 0),  # all filtered
        (up * 2, 6 * grid - up * 2, 0, 0),  # J(Q) = Q(6N - 4Q): ties possible
    ]
    for b, a, hm, hr in fixed:
        yield np.asarray(b), np.asarray(a), hm, hr
    for i in range(count - len(fixed)):
        kind = i % 4
        if kind == 0:  # anywhere in range
            b = np.sort(rng.choice(max_offset + 1, grid + 1, replace=False))
            a = np.sort(rng.choice(max_offset + 1, grid + 1, replace=False))[::-1]
        else:  # narrow spreads around a common level: ties, zero spreads, hurdles that bite
            lo = int(rng.integers(0, max_offset - 8 * grid - 40))
            b = lo + np.cumsum(rng.integers(1, 1 + kind, grid + 1))
            a = lo + int(rng.integers(-4, 30)) + np.cumsum(rng.integers(1, 1 + kind, grid + 1))[::-1]
            a = np.clip(a, 0, max_offset)
            if not (np.all(np.diff(a) < 0) and a.min() >= 0):
                a = np.sort(rng.choice(max_offset + 1, grid + 1, replace=False))[::-1]
        hm = int(rng.integers(0, max_hurdle + 1)) if i % 3 == 0 else int(rng.integers(0, 12))
        hr = int(rng.integers(0, max_hurdle + 1)) if i % 5 == 0 else int(rng.integers(0, 12))
        yield b, a, hm, hr


def _check_parity(circuit, terms: MarketTerms, count: int, seed: int) -> int:
    checked = 0
    for b, a, hm, hr in _cases(terms.grid, terms.max_offset, terms.max_hurdle, count, seed):
        schedules = make_schedules(b + BASE, a + BASE)
        assert schedules.strict
        reference = select_equilibrium(schedules, hm, hr, terms.hurdle_mode, equilibrium_filter=True)
        shortcut = select_equilibrium(schedules, hm, hr, terms.hurdle_mode, equilibrium_filter=False)
        assert shortcut == reference, "D10: the equilibrium filter is redundant for valid reports"
        out = circuit.simulate(list(b), hm, list(a), hr)
        assert not out.invalid, (b, a)
        assert out.instruction(terms) == reference, (b.tolist(), a.tolist(), hm, hr, out)
        checked += 1
    return checked


@pytest.fixture(scope="module")
def margin_circuit():
    from crypto.circuit import SelectionCircuit

    terms = MarketTerms(grid=4, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    return terms, SelectionCircuit.simulation_only(terms)


def test_simulation_matches_reference_margin_mode(margin_circuit):
    terms, circuit = margin_circuit
    assert _check_parity(circuit, terms, 400, seed=1) == 400


def test_simulation_matches_reference_spread_mode():
    from crypto.circuit import SelectionCircuit

    terms = MarketTerms(grid=3, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="spread")
    circuit = SelectionCircuit.simulation_only(terms)
    assert _check_parity(circuit, terms, 400, seed=2) == 400


def test_worked_example_selection_without_trade_and_with_trade(margin_circuit):
    terms, circuit = margin_circuit
    b, a = [0, 10, 20, 30, 40], [90, 80, 70, 60, 50]  # s = 90, 70, 50, 30, 10; J = 0, 70, 100, 90, 40
    assert circuit.simulate(b, 0, a, 0).volume == 2
    out = circuit.simulate(b, 20, a, 0)  # margin s/2 >= 20: s >= 40 keeps Q <= 2
    assert (out.trade, out.volume, out.r_mm_offset, out.r_rm_offset) == (True, 2, 20, 70)
    assert circuit.simulate(b, 0, a, 46).instruction(terms) == NO_TRADE  # s >= 92: nothing survives


def test_ties_go_to_the_larger_volume(margin_circuit):
    terms, circuit = margin_circuit
    b, a = [0, 10, 20, 30, 40], [130, 110, 70, 50, 41]  # s = 100, 50, 20, 1: J = 100, 100, 60, 4 (tie)
    out = circuit.simulate(b, 0, a, 0)
    assert out.volume == 2 and out.joint_profit == 100


@pytest.mark.parametrize(
    "b, a",
    [
        ([0, 5, 4, 9, 12], [90, 80, 70, 60, 50]),  # b decreases
        ([0, 5, 6, 9, 12], [90, 80, 85, 60, 50]),  # a increases
        ([0, 5, 5, 9, 8], [90, 80, 70, 70, 50]),  # flat steps are fine, but b decreases at the end
        ([1023, 0, 1023, 0, 1023], [0, 1023, 0, 1023, 0]),  # extremes
    ],
)
def test_non_monotone_reports_raise_invalid_and_never_trade(margin_circuit, b, a):
    terms, circuit = margin_circuit
    out = circuit.simulate(b, 0, a, 0)
    assert out.invalid
    assert not out.trade and out.volume == 0 and out.r_mm_offset == 0 and out.joint_profit == 0
    assert out.instruction(terms) == NO_TRADE


@pytest.mark.parametrize(
    "b, a",
    [
        ([0, 5, 5, 9, 12], [90, 80, 70, 60, 50]),  # flat step in b: Q = 1 not attainable
        ([0, 5, 6, 9, 12], [90, 80, 70, 70, 50]),  # flat step in a: Q = 2 not attainable
        ([2, 2, 2, 2, 2], [3, 3, 3, 3, 2]),  # only Q = 4 attainable and BDrm cuts: no trade
        ([0, 0, 0, 0, 0], [9, 9, 9, 9, 9]),  # everything flat: Q = 4 only, J = 36
    ],
)
def test_weakly_monotone_reports_are_valid_and_follow_the_reference(margin_circuit, b, a):
    terms, circuit = margin_circuit
    out = circuit.simulate(b, 0, a, 0)
    assert not out.invalid
    want = select_equilibrium(make_schedules(np.array(b) + BASE, np.array(a) + BASE), 0, 0, "margin")
    assert out.instruction(terms) == want


def test_random_reports_invalid_flag_matches_weak_monotonicity(margin_circuit):
    terms, circuit = margin_circuit
    rng = np.random.default_rng(7)
    flagged = 0
    for k in range(200):
        b = rng.integers(0, 1024, 5) if k % 2 else np.sort(rng.integers(0, 3, 5) * 300)  # even k: runs
        a = rng.integers(0, 1024, 5) if k % 2 else np.sort(rng.integers(0, 3, 5) * 300)[::-1]
        weak = bool(np.all(np.diff(b) >= 0) and np.all(np.diff(a) <= 0))
        out = circuit.simulate(list(b), 3, list(a), 1)
        assert out.invalid == (not weak)
        if out.invalid:  # an invalid report never trades and reveals no grid point
            assert (out.trade, out.volume, out.r_mm_offset, out.r_rm_offset, out.joint_profit) == (False, 0, 0, 0, 0)
        flagged += out.invalid
    assert 90 <= flagged <= 100  # the random odd ones (almost all), never the sorted even ones


def test_out_of_range_inputs_are_rejected_before_anything_runs(margin_circuit):
    from crypto.circuit import CircuitError

    _, circuit = margin_circuit
    good = [0, 10, 20, 30, 40]
    with pytest.raises(CircuitError, match=r"b_offsets\[2\] = 1024"):
        circuit.simulate([0, 10, 1024, 30, 40], 0, good[::-1], 0)
    with pytest.raises(CircuitError, match=r"a_offsets: 4 values"):
        circuit.simulate(good, 0, [4, 3, 2, 1], 0)
    with pytest.raises(CircuitError, match=r"h_rm = 256"):
        circuit.simulate(good, 0, good[::-1], 256)
    with pytest.raises(CircuitError, match=r"b_offsets\[0\] = 1.5"):
        circuit.simulate([1.5, 10, 20, 30, 40], 0, good[::-1], 0)


@pytest.mark.parametrize("grid,mode,rate_bits,hurdle_bits,cases", [
    (6, "margin", 9, 8, 150),  # the protocol's simulate/selector terms: digit layout (3, 3, 2, 1)
    (5, "spread", 9, 9, 120),
    (7, "margin", 7, 7, 120),  # 2·h_max > max spread: the hurdle's top reaches above the spread's top digit
    (5, "margin", 10, 10, 100),  # the same at 10 bits: G = 2·H has 11 bits
    (4, "spread", 12, 8, 100),  # layout (3, 3, 3, 2, 1)
    (1, "margin", 10, 8, 60),  # a single grid point: no tournament node
    (16, "margin", 10, 8, 12),  # a benchmark grid: five-digit J (its compile is most of the cost)
    (12, "spread", 10, 8, 12),  # the no-cut test is quadratic in N: larger grids compile in minutes (bench_fhe)
])
def test_radix_digit_layouts_match_reference(grid, mode, rate_bits, hurdle_bits, cases):
    """The radix circuit's digit layout, carries and hurdle test follow the rate and hurdle widths."""
    from crypto.circuit import SelectionCircuit

    terms = MarketTerms(grid=grid, base_rate=BASE, rate_bits=rate_bits, hurdle_bits=hurdle_bits, hurdle_mode=mode)
    circuit = SelectionCircuit.simulation_only(terms)
    assert _check_parity(circuit, terms, cases, seed=grid) == cases
    m = terms.max_offset
    bad_a = [m - q for q in range(grid + 1)]
    bad_a[0] = bad_a[1] - 1  # the first step goes up
    assert circuit.simulate(list(range(grid + 1)), 0, bad_a, 0).invalid
    out = circuit.simulate(list(range(grid + 1)), terms.max_hurdle, [m - q for q in range(grid + 1)], terms.max_hurdle)
    want = select_equilibrium(make_schedules(np.arange(grid + 1) + BASE, m - np.arange(grid + 1) + BASE),
                               terms.max_hurdle, terms.max_hurdle, terms.hurdle_mode)
    assert out.instruction(terms) == want


def test_radix_inputs_are_digits_and_outputs_digit_rows():
    """report_digits emits each offset and the hurdle as digits (range errors still name field and value), no
    survivor threshold; SelectionOutput.from_values recombines six base-8 digit rows and rejects digits out of
    range."""
    from crypto.circuit import CircuitError, CircuitShape, SelectionOutput, report_digits

    terms = MarketTerms(grid=2, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    shape = CircuitShape.from_terms(terms)
    assert shape.rate_layout == (3, 3, 3, 1)
    # margin: G = 2·h is linear in h's digits (2, 3, 3): G_0 = 2·h_0, G_1 = h_1, G_2 = h_2
    assert shape.hurdle_digits == ((2, 0, 2), (3, 1, 1), (3, 2, 1)) and shape.hurdle_top_bound == 0
    # offsets 0, 9 = 1 + 8·1, 1023; hurdle 200 = 0 + 4·2 + 32·6; each digit stored plus one (0 is invalid)
    raw = [0, 0, 0, 0, 1, 1, 0, 0, 7, 7, 7, 1, 0, 2, 6]
    assert report_digits(shape, "mm", [0, 9, 1023], 200) == [d + 1 for d in raw]
    assert shape.digit_count == 3 * 4 + 3 and shape.digit_widths[-3:] == (2, 3, 3)
    spread = CircuitShape.from_terms(MarketTerms(grid=2, base_rate=BASE, rate_bits=10, hurdle_bits=10,
                                                 hurdle_mode="spread"))
    assert spread.hurdle_digits == ((3, 0, 1), (3, 1, 1), (3, 2, 1), (1, 3, 1)) and spread.hurdle_top_bound == 1
    wide = CircuitShape.from_terms(MarketTerms(grid=2, base_rate=BASE, rate_bits=10, hurdle_bits=10))
    assert wide.hurdle_digits[-1] == (2, 3, 1) and wide.hurdle_top_bound == 3  # 2·1023 = 2046 < 4·512
    with pytest.raises(CircuitError, match=r"b_offsets\[2\] = 1024"):
        report_digits(shape, "mm", [0, 9, 1024], 0)
    with pytest.raises(CircuitError, match=r"h_rm = 256"):
        report_digits(shape, "rm", [3, 2, 1], 256)
    rows = [[1, 0, 0], [0, 0, 0], [0, 0, 0], [3, 0, 0], [1, 2, 0], [5, 5, 1]]  # Q = 3, b = 17, J' = J + 1
    out = SelectionOutput.from_values(np.array(rows))
    assert (out.trade, out.volume, out.r_mm_offset, out.joint_profit, out.r_rm_offset) == (True, 3, 17, 108, 53)
    assert not out.invalid and SelectionOutput.from_values(np.array(rows).reshape(-1)) == out
    with pytest.raises(CircuitError, match="outside \\[0, 7\\]"):
        SelectionOutput.from_values([[1, 0], [0, 0], [0, 0], [3, 0], [8, 0], [4, 1]])
    with pytest.raises(CircuitError, match="6 rows"):
        SelectionOutput.from_values([1, 0, 3, 17, 5])
    flagged = SelectionOutput.from_values([0, 0, 1, 0, 0, 0])
    assert flagged.invalid_rm and not flagged.invalid_mm and flagged.invalid
    with pytest.raises(CircuitError, match="trade = 1 with an invalid flag"):
        SelectionOutput.from_values([1, 1, 0, 3, 10, 31])


def test_radix_goes_beyond_a_16_bit_joint_profit_and_is_the_only_formulation():
    from crypto.circuit import FORMULATION, CircuitShape

    terms = MarketTerms(grid=64, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    shape = CircuitShape.from_terms(terms)
    assert shape.joint_digits == 6
    assert shape.formulation == FORMULATION == "radix"


def test_the_circuit_cache_key_names_formulation_and_strategy():
    """A compiled artifact is cached per (terms, formulation, strategy, rule): the key is the SHA-256 of exactly
    those, so an artifact of another formulation or rule can never be loaded from the same folder."""
    from crypto.circuit import FORMULATION, RULE_VERSION, STRATEGIES, circuit_cache_key
    from crypto.encoding import canonical_bytes, digest

    terms = MarketTerms(grid=4, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    for strategy in STRATEGIES:
        body = dict(terms.as_dict()) | {"formulation": FORMULATION, "parameter_strategy": strategy,
                                        "rule": RULE_VERSION}
        assert circuit_cache_key(terms, strategy) == digest(canonical_bytes(body, name="terms"))
    assert circuit_cache_key(terms) != circuit_cache_key(MarketTerms(grid=5, base_rate=BASE, rate_bits=10,
                                                                     hurdle_bits=8, hurdle_mode="margin"))


def _weak_cases(grid: int, max_offset: int, count: int, seed: int):
    """Weakly monotone report pairs with runs of equal values (run lengths 1-4), narrow and wide steps, hurdles
    that bite, and every 5th pair strictly monotone."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        big = (2, 6, 40, 150)[i % 4]
        flat = 0.0 if i % 5 == 0 else float(rng.uniform(0.2, 0.8))

        def steps():
            out = rng.integers(1, big + 1, grid)
            return np.where(rng.random(grid) < flat, 0, out)

        b_steps, a_steps = steps(), steps()
        lo = int(rng.integers(0, max_offset - int(b_steps.sum()) + 1))
        b = lo + np.concatenate([[0], np.cumsum(b_steps)])
        top = int(rng.integers(int(a_steps.sum()), max_offset + 1))
        a = top - np.concatenate([[0], np.cumsum(a_steps)])
        a = np.clip(a + int(rng.integers(-20, 60)), a - a.min(), max_offset - (a.max() - a))  # keep in range
        yield b, a, int(rng.integers(0, 12)), int(rng.integers(0, 12))


@pytest.mark.parametrize("grid,mode,count,seed", [(4, "margin", 200, 21), (5, "spread", 150, 22),
                                                   (3, "margin", 100, 23), (6, "spread", 50, 24)])
def test_simulation_matches_the_exhaustive_enumeration_on_flat_steps(grid, mode, count, seed):
    """500 weakly monotone report pairs (most with flat runs): each circuit output equals the selection read
    off the exhaustive best-response enumeration (and the plaintext reference)."""
    from crypto.circuit import SelectionCircuit
    from tests.market.oracle import enumerated_selection

    terms = MarketTerms(grid=grid, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode=mode)
    circuit = SelectionCircuit.simulation_only(terms)
    flats = trades = 0
    for b, a, hm, hr in _weak_cases(grid, terms.max_offset, count, seed):
        s = make_schedules(b + BASE, a + BASE)
        want = enumerated_selection(s, hm, hr, mode)
        assert select_equilibrium(s, hm, hr, mode) == want
        out = circuit.simulate(b.tolist(), hm, a.tolist(), hr)
        assert not out.invalid and out.instruction(terms) == want, (b.tolist(), a.tolist(), hm, hr, out, want)
        flats += not s.strict
        trades += want.trade
    assert flats > count // 2 and 0 < trades < count


def _decode(shape, digits):
    """A digit vector (values ``digit + 1``) back to (offsets, hurdle): the report a dealer's digits spell."""
    from crypto.circuit.shape import _offsets

    digits = [d - 1 for d in digits]
    rd = len(shape.rate_layout)
    weights = [1 << o for o in _offsets(shape.rate_layout)]
    offsets = [sum(d * w for d, w in zip(digits[q * rd : (q + 1) * rd], weights)) for q in range(shape.grid + 1)]
    widths = [w for w, _, _ in shape.hurdle_digits]
    hurdle = sum(d << o for d, o in zip(digits[(shape.grid + 1) * rd :], _offsets(widths)))
    return offsets, hurdle


def test_a_dealer_cannot_veto_the_joint_profit_maximising_volume():
    """Before, the encoder packed each dealer's survivor thresholds τ(Q) = max(c·h, σ(Q)) as input digits; a
    dealer encrypting its own digits could have set τ(Q*) above every spread and vetoed the joint-profit
    maximising volume Q* at no cost. Now the circuit computes the no-cut test from the schedules: the input
    holds no threshold, the forged one is refused, and the honest schedule's Q* is selected."""
    from crypto.circuit import CircuitError, SelectionCircuit, report_digits
    from market.no_cut import survivor_thresholds

    terms = MarketTerms(grid=4, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    circuit = SelectionCircuit.simulation_only(terms)
    b, a = [0, 10, 20, 30, 40], [90, 80, 70, 60, 50]  # s = 90, 70, 50, 30, 10; J = 70, 100, 90, 40: Q* = 2
    s = make_schedules(np.array(b) + BASE, np.array(a) + BASE)
    # the old rule with RM's forged τ_rm(2) = max_offset + 1: Q = 2 vetoed, Q = 3 selected instead
    forged = survivor_thresholds(s.a, 0, "rm").copy()
    forged[2] = terms.max_offset + 1
    survivors = s.attainable & (s.spread >= survivor_thresholds(s.b, 0, "mm")) & (s.spread >= forged)
    survivors[0] = False
    assert int(np.argmax(np.where(survivors, s.joint_profit, -1))) == 3
    # the circuit: the honest schedule's Q* whatever else RM would like; a threshold appended is refused
    out = circuit.simulate(b, 0, a, 0)
    assert (out.volume, out.joint_profit) == (2, 100) and out.instruction(terms) == select_equilibrium(s, 0, 0)
    digits_rm = report_digits(circuit.shape, "rm", a, 0)
    old_tau = [1] * 4 + [1, 1, 1, 3] + [1] * 8  # the old layout's τ(1..4) digits (plus one), τ(2) = 1024
    with pytest.raises(CircuitError, match=r"digits_rm: 39 digits, the circuit takes 23"):
        circuit.simulate_digits(report_digits(circuit.shape, "mm", b, 0), digits_rm + old_tau)
    # RM's only lever is its report: a misreport that makes Q = 2 fail (a flat step at 2) changes its own rates
    out = circuit.simulate(b, 0, [90, 80, 60, 60, 50], 0)
    assert out.volume != 2 and out.instruction(terms) == select_by_thresholds(
        make_schedules(np.array(b) + BASE, np.array([90, 80, 60, 60, 50]) + BASE), 0, 0)


def test_any_digit_vector_is_a_report_or_that_dealers_invalid_flag():
    """Whatever in-range digits a dealer encrypts, the output is the rule (no-cut test included) applied to the
    report they spell, or that dealer's invalid flag when its schedule has a reversed step: a dealer's power
    is exactly a misreport's."""
    from crypto.circuit import SelectionCircuit, report_digits

    terms = MarketTerms(grid=3, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="spread")
    circuit = SelectionCircuit.simulation_only(terms)
    shape = circuit.shape
    rng = np.random.default_rng(31)
    seen = {"mm": 0, "rm": 0, "trade": 0}
    for k in range(150):
        digits = {}
        for side in ("mm", "rm"):
            row = [int(rng.integers(1, (1 << w) + 1)) for w in shape.digit_widths]
            if k % 3:  # most of them sorted into a valid report, with random hurdles and runs
                offsets, hurdle = _decode(shape, row)
                offsets = sorted(offsets, reverse=side == "rm")
                if k % 2:
                    offsets = [offsets[0]] * 2 + offsets[2:]
                row = report_digits(shape, side, offsets, hurdle % 24)
            digits[side] = row
        (b, h_mm), (a, h_rm) = _decode(shape, digits["mm"]), _decode(shape, digits["rm"])
        out = SelectionOutput.from_values(circuit.simulate_digits(digits["mm"], digits["rm"]))
        bad_mm, bad_rm = bool(np.any(np.diff(b) < 0)), bool(np.any(np.diff(a) > 0))
        assert (out.invalid_mm, out.invalid_rm) == (bad_mm, bad_rm), (b, a)
        if bad_mm or bad_rm:
            assert not out.trade
        else:
            s = make_schedules(np.array(b) + BASE, np.array(a) + BASE)
            assert out.instruction(terms) == select_by_thresholds(s, h_mm, h_rm, "spread"), (b, a, h_mm, h_rm)
        seen["mm"] += bad_mm
        seen["rm"] += bad_rm
        seen["trade"] += out.trade
    assert seen["mm"] >= 30 and seen["rm"] >= 30 and seen["trade"] >= 20, seen


def test_any_imported_value_outside_a_digits_range_is_that_dealers_invalid_flag():
    """Simulation of the import stages on native 5-bit values (what to_native gives, 0..31): one digit of one
    dealer set to 0, to a value above its own width, or to 16..31 raises that dealer's flag and nothing
    else; a set padding bit (negacyclic images) is checked in real FHE (test_fhe_roundtrip.py). The import
    stages are separate lookups in the compiled graph (stage 1 feeds two tables: concrete cannot fuse it)."""
    from crypto.circuit import SelectionCircuit, report_digits
    from crypto.circuit.radix import import_tables

    terms = MarketTerms(grid=3, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    circuit = SelectionCircuit.simulation_only(terms)
    shape = circuit.shape
    honest = {"mm": report_digits(shape, "mm", [0, 10, 20, 30], 1), "rm": report_digits(shape, "rm", [90, 80, 70, 60], 2)}
    assert SelectionOutput.from_values(circuit.simulate_digits(honest["mm"], honest["rm"])).trade
    rng = np.random.default_rng(5)
    checked = 0
    for k, width in enumerate(shape.digit_widths):
        bad_values = [0, (1 << width) + 1, 15, 16, int(rng.integers(17, 32)), 31]
        side = ("mm", "rm")[k % 2]
        for value in bad_values[k % 3 :: 3]:
            digits = dict(honest)
            digits[side] = list(honest[side])
            digits[side][k] = value
            out = SelectionOutput.from_values(circuit.simulate_digits(digits["mm"], digits["rm"]))
            assert (out.invalid_mm, out.invalid_rm, out.trade) == (side == "mm", side == "rm", False), (k, value)
            checked += 1
    assert checked >= 2 * shape.digit_count
    first, digit, valid = import_tables(shape.digit_widths)
    # every stage-1 entry non-zero and in the lower half; stage 2 zero on the upper half (negacyclic images)
    assert all(1 <= v < 16 for table in first for v in table)
    assert not any(digit[16:]) and not any(valid[16:])
    graph = circuit._simulator.graph.format()
    assert graph.count("@ import") == 6  # three lookups per dealer's vector: stage 1, digit, valid bit
