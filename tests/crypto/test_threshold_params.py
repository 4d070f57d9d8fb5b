"""Threshold parameters without FHE: replicated share sets, the table width k, the setup record."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from crypto.threshold import OutputEncoding, ThresholdParams, ThresholdSetup, ThresholdSetupError, margin, switch_bits
from crypto.threshold.concrete_lwe import decode_phase
from crypto.threshold.setup import switch_down


@pytest.mark.parametrize("name", ["2of3", "3of3", "2of2", "3of5"])
def test_any_k_holders_keep_every_share_and_any_k_minus_1_miss_one(name):
    k, n = map(int, name.split("of"))
    params = ThresholdParams.named(name, [f"key_holder_{i}" for i in range(1, n + 1)])
    everything = set(range(params.share_count))
    for group in combinations(params.holders, k):
        assert set().union(*(params.shares_of(h) for h in group)) == everything
    for group in combinations(params.holders, k - 1):
        missing = everything - set().union(*(params.shares_of(h) for h in group))
        assert missing == {params.share_sets.index(frozenset(group))}


def test_two_of_three_is_the_textbook_replicated_sharing():
    params = ThresholdParams.named("2of3", ["key_holder_1", "key_holder_2", "key_holder_3"])
    assert params.share_count == 3
    assert [len(params.shares_of(h)) for h in params.holders] == [2, 2, 2]
    assert [len(params.holders_of(j)) for j in range(3)] == [2, 2, 2]


@pytest.mark.parametrize("bad, text", [
    (dict(holders=("key_holder_1",), threshold=2), "need 2 ≤ k ≤ n"),
    (dict(holders=("key_holder_1", "key_holder_1"), threshold=2), "duplicates"),
    (dict(holders=("Key", "key_holder_2"), threshold=2), "not a holder name"),
    (dict(holders=("key_holder_1", "key_holder_2", "key_holder_3"), threshold=4), "need 2 ≤ k ≤ n"),
    (dict(holders=tuple(f"h{i}" for i in range(16)), threshold=8), "replicated shares"),
])
def test_bad_parameters_are_refused(bad, text):
    with pytest.raises(ThresholdSetupError, match=text):
        ThresholdParams(**bad)
    with pytest.raises(ThresholdSetupError, match="not one of"):
        ThresholdParams.named("4of7", ["a"])


def test_table_width_keeps_the_rounding_within_its_budget():
    for width in range(1, 9):
        for shares in (1, 2, 3, 6, 10):
            k = switch_bits(width, shares)
            m = margin(width, shares)
            assert m["rounding_share_of_half_gap"] <= 2**-6
            assert (shares + 1) / 2 * 2.0 ** (64 - (k - 1)) > 2.0 ** (64 - width - 2 - 6)  # k − 1 would not do
    assert switch_bits(4, 3) == 13 and switch_bits(7, 3) == 16
    with pytest.raises(ThresholdSetupError, match="tables"):
        switch_bits(14, 3)


def test_switched_rounding_error_stays_within_the_bound():
    """Σ of separately rounded terms vs the rounded sum: at most (S + 1)/2 units, as switch_bits assumes."""
    rng = np.random.default_rng(7)
    k, shares = 13, 3
    terms = rng.integers(0, 2**64, size=(shares + 1, 100_000), dtype=np.uint64)
    with np.errstate(over="ignore"):
        total = terms.sum(axis=0, dtype=np.uint64)
    separately = sum(switch_down(t, k).astype(np.int64) for t in terms)
    exact = total.astype(np.float64) / 2.0 ** (64 - k)  # of the true total, in units of 2^(64−k)
    error = (separately - exact + 2**(k - 1)) % 2**k - 2**(k - 1)
    assert np.max(np.abs(error)) <= (shares + 1) / 2 + 1e-3


def test_decode_table_is_concretes_rounding_shifted_by_the_mask():
    encoding = OutputEncoding(0, 1024, 4, False, (3,))
    setup = ThresholdSetup(ThresholdParams.named("2of3", ["a1", "a2", "a3"]), encoding, bytes(32))
    k = setup.switch_bits
    table = setup.decode_table(1234)
    for m in range(32):
        c = (m << (k - 5)) + 1234 + 3  # phase m·Δ_k plus a small error, masked
        assert table[c % (1 << k)] == m
        assert decode_phase(np.array([(m << 59) + (1 << 50)], dtype=np.uint64), 4)[0] == m
    assert ThresholdSetup.from_bytes(setup.to_bytes()) == setup
    with pytest.raises(ThresholdSetupError):
        ThresholdSetup.from_bytes(setup.to_bytes()[:-3])
