"""Parity of the selection circuit (simulation mode) with the plaintext reference, >= 2000 report pairs
(1000 at N = 4 in margin mode, 1000 at N = 3 in spread mode), plus smaller sweeps for other grids and other
rate widths (radix digit layouts).

Reference: :func:`market.selection.select_equilibrium` with the O(N²) equilibrium filter on; for valid
(strictly monotone) reports the test also checks that the filter is redundant (D10). Non-monotone
reports must raise the circuit's ``invalid`` flag and give no trade.
"""
from __future__ import annotations

import numpy as np
import pytest

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
    assert _check_parity(circuit, terms, 1000, seed=1) == 1000


def test_simulation_matches_reference_spread_mode():
    from crypto.circuit import SelectionCircuit

    terms = MarketTerms(grid=3, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="spread")
    circuit = SelectionCircuit.simulation_only(terms)
    assert _check_parity(circuit, terms, 1000, seed=2) == 1000


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
    (16, "margin", 10, 8, 100),  # the benchmark grids: five-digit J
    (32, "spread", 10, 8, 40),
    (64, "margin", 10, 8, 30),  # beyond a 16-bit J: six-digit J
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
    """pack_report emits each offset and hurdle as its digits (range errors still name field and value);
    SelectionOutput.from_values recombines five base-8 digit rows and rejects digits out of range."""
    from crypto.circuit import CircuitError, CircuitShape, SelectionOutput, pack_report

    terms = MarketTerms(grid=2, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    shape = CircuitShape.from_terms(terms)
    assert shape.rate_layout == (3, 3, 3, 1) and shape.threshold_top_bound == 2
    packed = pack_report(shape, "mm", [0, 9, 1023], 200)
    # offsets 0, 9 = 1 + 8·1, 1023; thresholds τ(1) = 2·200 = 400 = 0 + 8·2 + 64·6, τ(2) = max(400, 1·1014/1)
    # = 1014 = 6 + 8·6 + 64·7 + 512·1
    assert packed.tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 7, 7, 7, 1, 0, 2, 6, 0, 6, 6, 7, 1]
    assert len(packed) == shape.report_length == 5 * 4
    shape3 = CircuitShape.from_terms(MarketTerms(grid=3, base_rate=BASE, rate_bits=10, hurdle_bits=8))
    assert pack_report(shape3, "mm", [0, 0, 0, 1023], 0).tolist()[-4:] == [0, 0, 0, 2]  # τ(3) = 2046 -> 1024
    with pytest.raises(CircuitError, match=r"b_offsets\[2\] = 1024"):
        pack_report(shape, "mm", [0, 9, 1024], 0)
    with pytest.raises(CircuitError, match=r"h_rm = 256"):
        pack_report(shape, "rm", [3, 2, 1], 256)
    rows = [[1, 0, 0], [0, 0, 0], [3, 0, 0], [1, 2, 0], [5, 5, 1]]  # Q = 3, b = 17, J' = J + 1 = 5 + 40 + 64
    out = SelectionOutput.from_values(np.array(rows))
    assert (out.trade, out.volume, out.r_mm_offset, out.joint_profit, out.r_rm_offset) == (True, 3, 17, 108, 53)
    assert SelectionOutput.from_values(np.array(rows).reshape(-1)) == out  # the simulate backend flattens
    with pytest.raises(CircuitError, match="outside \\[0, 7\\]"):
        SelectionOutput.from_values([[1, 0], [0, 0], [3, 0], [8, 0], [4, 1]])
    with pytest.raises(CircuitError, match="5 rows"):
        SelectionOutput.from_values([1, 0, 3, 17])


def test_radix_goes_beyond_a_16_bit_joint_profit_and_is_the_only_formulation():
    from crypto.circuit import FORMULATIONS, CircuitError, CircuitShape

    terms = MarketTerms(grid=64, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    assert CircuitShape.from_terms(terms).joint_digits == 6
    assert FORMULATIONS == ("radix",)
    with pytest.raises(CircuitError, match="formulation = 'limbs': must be one of radix"):
        CircuitShape.from_terms(terms, "limbs")


def test_the_circuit_cache_key_names_formulation_and_strategy():
    """A compiled artifact is cached per (terms, formulation, strategy): changing the default formulation can never
    load another formulation's artifact from the same folder."""
    from crypto.circuit import FORMULATIONS, STRATEGIES, circuit_cache_key

    terms = MarketTerms(grid=4, base_rate=BASE, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    keys = {circuit_cache_key(terms, f, s) for f in FORMULATIONS for s in STRATEGIES}
    assert len(keys) == len(FORMULATIONS) * len(STRATEGIES)


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


@pytest.mark.parametrize("grid,mode,count,seed", [(4, "margin", 1000, 21), (5, "spread", 700, 22),
                                                   (3, "margin", 300, 23), (6, "spread", 200, 24)])
def test_simulation_matches_the_exhaustive_enumeration_on_flat_steps(grid, mode, count, seed):
    """2,200 weakly monotone report pairs (most with flat runs): each circuit output equals the selection read
    off the exhaustive best-response enumeration (and the plaintext reference)."""
    from crypto.circuit import SelectionCircuit
    from tests.market.test_no_cut import enumerated_selection

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
