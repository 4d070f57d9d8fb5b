"""The two ways a round's selection is computed: real TFHE or the circuit's simulation mode.

Both run the FHE engineer's :class:`crypto.circuit.SelectionCircuit` (never a second copy of the rule):

* ``fhe``  -- the custodian encrypts with its secret key, evaluators run ``SelectionCircuit.evaluate`` on
  serialized ciphertexts with the public evaluation keys, the custodian decrypts the output.
* ``simulate`` -- [decided] the same circuit graph run by ``SelectionCircuit.simulate``; the "ciphertexts"
  are canonical plaintext encodings, so this backend gives **no confidentiality**.  It exists for the
  heavy test matrices (crash at every phase, bad-input catalogue) and for large simulations, where real
  encryption adds nothing; its blobs say ``"backend": "simulate"`` so they can never be mistaken for
  ciphertexts.  Everything else in the round (seals, signatures, chain, blobs, replay) is identical.

Backend objects are split by role: :class:`CustodianSide` needs the custodian's folder (secret keys);
:class:`EvaluatorSide` needs only the public artefact and evaluation keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crypto.encoding import canonical_bytes, canonical_loads

__all__ = ["BACKENDS", "BackendError", "load_circuit", "CustodianSide", "EvaluatorSide",
           "decode_output", "encode_output"]

BACKENDS = ("fhe", "simulate")


class BackendError(Exception):
    """A backend input or output is malformed."""


_CIRCUITS: dict = {}  # one circuit object per artefact per process: its simulator compiles once (seconds)


def load_circuit(terms, cache_dir: Path):
    """The compiled circuit of ``terms`` (cached on disk by crypto, and per process here)."""
    from crypto.circuit import SelectionCircuit

    key = ("terms", repr(sorted(terms.as_dict().items())), str(Path(cache_dir).resolve()))
    if key not in _CIRCUITS:
        _CIRCUITS[key] = SelectionCircuit.for_terms(terms, Path(cache_dir))
    return _CIRCUITS[key]


def encode_output(values) -> bytes:
    """Canonical bytes of the simulated circuit's raw output ``[trade, invalid, Q_sel, b̂_sel, J_sel]``."""
    return canonical_bytes({"backend": "simulate", "kind": "selection-output",
                            "values": [int(v) for v in np.asarray(values).reshape(-1)]})


def decode_output(data: bytes):
    """The simulate backend's output blob as a :class:`crypto.circuit.SelectionOutput` (same checks)."""
    from crypto.circuit import SelectionOutput

    try:
        obj = canonical_loads(data, name="output")
        if not isinstance(obj, dict) or obj.get("backend") != "simulate" or obj.get("kind") != "selection-output":
            raise ValueError("not a simulate-backend selection output")
        return SelectionOutput.from_values(obj["values"])
    except (ValueError, KeyError, TypeError) as exc:  # EncodingError and CircuitError are ValueErrors
        raise BackendError(f"output blob is not a simulate-backend selection output: {exc}") from None


def _encode_input(circuit, side: str, offsets, hurdle: int) -> bytes:
    from crypto.circuit import pack_report

    packed = pack_report(circuit.shape, side, offsets, hurdle)  # the same range checks as encryption
    return canonical_bytes({"backend": "simulate", "kind": "selection-input", "side": side,
                            "values": [int(v) for v in packed]})


def _decode_input(data: bytes, side: str) -> np.ndarray:
    try:
        obj = canonical_loads(data, name=f"{side} input")
    except ValueError:
        raise BackendError(f"{side} input blob is not a simulate-backend input") from None
    if not isinstance(obj, dict) or obj.get("backend") != "simulate" or obj.get("side") != side:
        raise BackendError(f"{side} input blob is not a simulate-backend input for side {side!r}")
    return np.asarray(obj["values"], dtype=np.int64)


def simulate_evaluation_keys(circuit) -> bytes:
    return canonical_bytes({"backend": "simulate", "kind": "evaluation-keys",
                            "artifact": circuit.artifact_digest.hex()})


@dataclass
class CustodianSide:
    """Encryption and decryption; holds the secret key (fhe) -- lives in the custodian's folder only."""

    backend: str
    circuit: object
    keys: object | None  # crypto.fhe_keys.CustodianFheKeys for "fhe"

    @classmethod
    def open(cls, backend: str, circuit, custodian_dir: Path, *, create: bool,
             evaluation_keys_digest: bytes | None = None) -> "CustodianSide":
        """``evaluation_keys_digest``: the published (on-chain) digest the loaded secret key must match."""
        if backend not in BACKENDS:
            raise BackendError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "simulate":
            return cls(backend, circuit, None)
        from crypto.fhe_keys import CustodianFheKeys

        keys = (CustodianFheKeys.generate(circuit, custodian_dir) if create
                else CustodianFheKeys.load(circuit, custodian_dir, evaluation_keys_digest=evaluation_keys_digest))
        return cls(backend, circuit, keys)

    def evaluation_keys(self) -> bytes:
        if self.backend == "simulate":
            return simulate_evaluation_keys(self.circuit)
        return self.keys.evaluation_keys_bytes()

    def encrypt(self, side: str, offsets, hurdle: int) -> bytes:
        if self.backend == "simulate":
            return _encode_input(self.circuit, side, offsets, hurdle)
        if side == "mm":
            return self.keys.encrypt_mm(offsets, hurdle)
        return self.keys.encrypt_rm(offsets, hurdle)

    def decrypt(self, output: bytes):
        if self.backend == "simulate":
            return decode_output(output)
        return self.keys.decrypt_output(output)


@dataclass
class EvaluatorSide:
    """Runs the circuit on public blobs; used by evaluators and, for replay, by the auditor."""

    backend: str
    circuit: object

    def evaluate(self, evaluation_keys: bytes, ct_mm: bytes, ct_rm: bytes) -> bytes:
        if self.backend == "simulate":
            if evaluation_keys != simulate_evaluation_keys(self.circuit):
                raise BackendError("evaluation keys blob does not match the simulate backend's keys")
            return encode_output(self.circuit.simulate_packed(_decode_input(ct_mm, "mm"), _decode_input(ct_rm, "rm")))
        return self.circuit.evaluate(evaluation_keys, ct_mm, ct_rm)  # refuses to run without the fixed FFT plan


def circuit_from_artifact(artifact: bytes, terms, cache_dir: Path):
    """The circuit whose server artefact is ``artifact`` (the blob named on chain), for the auditor's replay.

    The artefact is written under ``cache_dir/artifacts/<sha256>/`` and loaded from there -- the auditor
    runs exactly the bytes the chain names, not a local recompilation.
    """
    from crypto.circuit import ARTIFACT_NAME, CircuitShape, SelectionCircuit
    from crypto.encoding import digest

    from protocol.blobstore import atomic_write
    from protocol.layout import circuit_artifact_dir

    name = digest(artifact).hex()
    if ("artifact", name) in _CIRCUITS:
        return _CIRCUITS[("artifact", name)]
    path = circuit_artifact_dir(cache_dir, name) / ARTIFACT_NAME
    if not path.exists() or digest(path.read_bytes()) != digest(artifact):
        atomic_write(path, artifact)
    circuit = SelectionCircuit(terms, CircuitShape.from_terms(terms), path)
    if circuit.artifact_digest.hex() != name:
        raise BackendError(f"circuit artefact at {path} does not hash to {name}")
    _CIRCUITS[("artifact", name)] = circuit
    return circuit
