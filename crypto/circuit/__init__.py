"""The contract's selection rule (docs/MODEL.md §5) as a TFHE circuit, compiled with concrete-python.

Modules: :mod:`~crypto.circuit.shape` (compile-time shape, cache key, digit layout),
:mod:`~crypto.circuit.report` (input packing, output decoding, inputset), :mod:`~crypto.circuit.gadgets`
(building blocks, each with its PBS cost), :mod:`~crypto.circuit.radix` (the rule),
:mod:`~crypto.circuit.compiled` (compile, cache, blobs, evaluation, cost report). Design and measured cost:
docs/CIRCUIT.md; the plaintext reference of the no-cut test: :mod:`market.no_cut`.

Importing this package does not import concrete (it pulls in torch): every concrete import is local.
"""
from __future__ import annotations

from crypto.circuit.compiled import (
    BLOB_MAGIC,
    CostReport,
    SelectionCircuit,
    _compile,
    peak_rss_bytes,
    unwrap_blob,
    wrap_blob,
)
from crypto.circuit.report import SelectionOutput, build_inputset, pack_report, report_digits
from crypto.circuit.shape import (
    ARTIFACT_NAME,
    FORMULATION,
    OUTPUT_BASE,
    OUTPUT_FIELDS,
    RADIX_BITS,
    RULE_VERSION,
    STRATEGIES,
    TLU_BITS,
    TLU_MAX,
    CircuitError,
    CircuitShape,
    circuit_cache_key,
    rate_layout,
)

__all__ = [
    "FORMULATION",
    "RADIX_BITS",
    "TLU_BITS",
    "CircuitError",
    "CircuitShape",
    "CostReport",
    "SelectionCircuit",
    "SelectionOutput",
    "build_inputset",
    "pack_report",
    "report_digits",
    "rate_layout",
    "circuit_cache_key",
]
