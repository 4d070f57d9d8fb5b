"""The compiled graph of the suite's N = 3 circuit is pinned: a change of the rule's code that must leave the
circuit as it is (a refactoring) keeps these values; one that changes the circuit shows here, and then
``RULE_VERSION``, the pinned values and the benchmarks change with it (``benchmarks/circuit_fingerprint.py``
prints them for any grid).

* the FHE graph of N = 3 (10-bit offsets, 8-bit hurdles, margin mode): PBS count, per step, and the digests of
  the graph (with and without tags) and of the MLIR;
* the rule is one function per ``fhe.tag`` step, in the order of ``STEPS``.
"""
from __future__ import annotations

import inspect

from crypto.circuit import RULE_VERSION, CircuitShape
from crypto.circuit import radix
from crypto.circuit.compiled import _compile, graph_fingerprint

PINNED_N3 = {
    "pbs_count": 394,
    "graph_sha256": "d32f85674d2138ef9dd25daf7a3b2951665cc8a4ab3ba1c5d632266df0677016",
    "graph_sha256_without_tags": "7226ac98c32ffb8f6ed90a457b5ff5d3b1953c17b9805f30c1b665c260918708",
    "mlir_sha256": "c06193a182649d90a2e8f3036190170ef13eeb8410fdb3f14a9420bb245e4cd1",
    "max_integer_bits": 5,
    "pbs_per_tag": {"import": 152, "steps": 36, "invalid": 9, "spreads": 9, "hurdle_mm": 12, "hurdle_rm": 12,
                    "joint_digits": 19, "joint_carries": 6, "cut_spreads": 18, "cut_products": 24,
                    "cut_carries": 18, "cut_compare": 24, "feasible": 3, "trade": 1, "joint_mask": 12,
                    "tournament_compare": 8, "tournament_select": 16, "one_hot": 3, "output_rate": 12},
}


def test_the_compiled_n3_graph_is_the_pinned_one(selection_circuit, fhe_terms):
    assert RULE_VERSION == "no-cut-in-circuit-1"  # a new rule pins new values
    # the session circuit was compiled in this run (fresh cache); compile again only if it was loaded
    compiled = selection_circuit._compiled
    if compiled is None:
        compiled = _compile(CircuitShape.from_terms(fhe_terms), simulation=False)
    fingerprint = graph_fingerprint(compiled)
    assert fingerprint == PINNED_N3
    assert list(fingerprint["pbs_per_tag"]) == list(radix.STEPS)


def test_the_rule_is_one_function_per_tagged_step_in_rule_order():
    steps = [f.tag for _, f in vars(radix).items() if inspect.isfunction(f) and hasattr(f, "tag")]
    assert steps == list(radix.STEPS)
