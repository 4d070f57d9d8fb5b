"""What k − 1 holders see is what a simulator knowing only the message produces (tested statistically).

The coalition C (one holder of 2-of-3, two of 3-of-5) sees: its key shares, its mask and table shares (all
dealt uniformly, independent of the key, the mask and the table, because C misses the share T = C), the other
holders' mask values — all of them copies of shares C keeps except d_T = r_T − switch(⟨a, s_T⟩) — the opened
c, and the others' table entries — all copies except T_T[c].

The simulator, given the message m and C's own state: draws d_T uniform in Z_2^k, sets
c = switch(b) + Σ_{j≠T} d_j + d_T, and T_T[c] = m − Σ_{j≠T} T_j[c] (mod 2^(p+1)). The tests check, over many
one-time slots of LWE encryptions under a binary key with bootstrap-sized noise: d_T and c uniform on Z_2^k
(chi-square, p > 1e-6), c independent of the message, the real T_T[c] equal to the simulator's in every slot,
and a negative control (the unmasked switched phase fails the same uniformity test). What is not tested
statistically is argued in docs/THRESHOLD.md (the shares of one setup are all-but-one uniform by construction).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy.stats import chi2_contingency, chisquare

from crypto.threshold import KeyHolder, OutputCiphertexts, OutputEncoding, ThresholdParams, combine, deal_secret_key, deal_slots
from crypto.threshold.setup import switch_down
from crypto.threshold.shares import ShareBlob

DIMENSION, WIDTH, VALUES = 512, 4, 16
SLOTS = {"2of3": 100, "3of5": 30}  # 3-of-5 tables are 4× wider (k = 15) and there are 6 per holder
P_MIN = 1e-6  # flakiness of a correct implementation: below one in a million per check


def _encrypt(key, messages, rng) -> OutputCiphertexts:
    """LWE in Z_2^64 as concrete encodes: b = ⟨a, s⟩ + m·2^(64−p−1) + e, e ~ N(0, (2^40)^2) (a bootstrap's order)."""
    a = rng.integers(0, 2**64, size=(len(messages), DIMENSION), dtype=np.uint64)
    noise = np.round(rng.normal(0, 2.0**40, size=len(messages))).astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        b = (a * key).sum(axis=1, dtype=np.uint64) + (np.asarray(messages, dtype=np.uint64) << np.uint64(64 - WIDTH - 1)) + noise
    encoding = OutputEncoding(0, DIMENSION, WIDTH, False, (len(messages),))
    return OutputCiphertexts(encoding, a, b, hashlib.sha256(a.tobytes() + b.tobytes()).digest())


def _chi2_uniform(values, bits, buckets=16) -> float:
    top = np.asarray(values, dtype=np.int64) >> (bits - 4)
    return chisquare(np.bincount(top, minlength=buckets)).pvalue


@pytest.fixture(scope="module", params=["2of3", "3of5"])
def views(request, tmp_path_factory):
    rng = np.random.default_rng()
    name = request.param
    k, n = {"2of3": (2, 3), "3of5": (3, 5)}[name]
    params = ThresholdParams.named(name, [f"key_holder_{i}" for i in range(1, n + 1)])
    root = tmp_path_factory.mktemp(name)
    dirs = {h: root / h for h in params.holders}
    key = rng.integers(0, 2, size=DIMENSION, dtype=np.uint64)
    encoding = OutputEncoding(0, DIMENSION, WIDTH, False, (VALUES,))
    setup = deal_secret_key(key, encoding, params, dirs)
    deal_slots(setup, dirs, range(SLOTS[name]))
    holders = {h: KeyHolder.load(dirs[h], h) for h in params.holders}
    coalition = params.holders[: k - 1]
    missed = params.share_sets.index(frozenset(coalition))  # the one share T = C that C does not keep
    present = tuple(coalition) + tuple(h for h in params.holders if h not in coalition)[:1]  # C and one more: k
    rows = []
    for slot in range(SLOTS[name]):
        messages = rng.integers(0, 2**WIDTH, size=VALUES) if slot % 2 else np.full(VALUES, 9)
        cts = _encrypt(key, messages, rng)
        masks = [holders[h].mask_share(cts, round=slot, slot=slot) for h in present]
        tables = [holders[h].table_share(cts, masks, round=slot, slot=slot) for h in present]
        result = combine(setup, cts, masks, tables, round=slot, slot=slot)
        assert np.array_equal(result.values, messages)
        outsider = ShareBlob.parse(setup, masks[-1]), ShareBlob.parse(setup, tables[-1])
        own_tables = {j: v for h in coalition for j, v in ShareBlob.parse(setup, tables[present.index(h)]).values.items()}
        rows.append({"messages": messages, "c": result.opening.c, "d_missed": outsider[0].values[missed],
                     "t_missed": outsider[1].values[missed], "own_tables": own_tables, "cts": cts, "key": key})
    return setup, missed, rows


def test_opened_c_and_the_missed_mask_share_are_uniform(views):
    setup, _, rows = views
    k = setup.switch_bits
    c = np.concatenate([r["c"] for r in rows])
    d = np.concatenate([r["d_missed"] for r in rows])
    assert c.size == len(rows) * VALUES
    assert _chi2_uniform(c, k) > P_MIN
    assert _chi2_uniform(c & 0xF, 4) > P_MIN  # low bits too
    assert _chi2_uniform(d, k) > P_MIN


def test_opened_c_is_independent_of_the_message(views):
    setup, _, rows = views
    k = setup.switch_bits
    c = np.concatenate([r["c"] for r in rows]) >> (k - 2)
    m = np.concatenate([r["messages"] for r in rows]) >> 2  # 4 × 4 contingency table
    table = np.zeros((4, 4))
    np.add.at(table, (c, m), 1)
    assert chi2_contingency(table).pvalue > P_MIN


def test_simulator_reproduces_the_table_share_exactly(views):
    setup, missed, rows = views
    modulus = setup.table_modulus
    for r in rows:
        others = sum(v.astype(np.int64) for j, v in r["own_tables"].items() if j != missed)
        simulated = (r["messages"] - others) % modulus
        assert np.array_equal(r["t_missed"], simulated)


def test_negative_control_unmasked_phase_is_not_uniform(views):
    """The same test on switch(phase) = c − r (what would be opened without the mask) fails: the test has teeth."""
    setup, _, rows = views
    k = setup.switch_bits
    key = rows[0]["key"]
    with np.errstate(over="ignore"):
        phases = np.concatenate([switch_down(r["cts"].b - (r["cts"].a * key).sum(axis=1, dtype=np.uint64), k)
                                 for r in rows if np.all(r["messages"] == 9)])
    assert phases.size >= VALUES * (len(rows) // 2)
    assert _chi2_uniform(phases, k) < 1e-30
