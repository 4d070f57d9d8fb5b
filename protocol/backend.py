"""The two ways a round's selection is computed: real TFHE or the circuit's simulation mode, split by role.

Both run the FHE engineer's :class:`crypto.circuit.SelectionCircuit` (never a second copy of the rule), and
this module is the only place in ``protocol/`` that calls crypto's owner-encryption and circuit functions:

* :class:`DealerSide` -- a dealer turns its own report into digits (``crypto.circuit.report_digits``) and
  seals them into the blob it publishes: ``fhe`` encrypts under the market's TFHE-rs compact public key
  (``crypto.tfhers.seal_owner_report``, with an input proof when the market has a CRS); ``simulate``
  [decided] writes the same digits as a canonical plaintext encoding, so this backend gives **no
  confidentiality**. It exists for the heavy test matrices and large simulations; its blobs say
  ``"backend": "simulate"`` so they can never be mistaken for ciphertexts.
* :class:`EvaluatorSide` -- evaluators and the auditor's replay open each dealer's blob (every structural
  check, and the proof when proofs are on) before computing, then run the circuit on the two inputs.
* :class:`CustodianSide` -- the custodian's keys: it publishes the public key and the evaluation keys and
  decrypts only the agreed output. It never encrypts a report.

Both backends take the same commit/reveal path; everything else in the round (seals, signatures, chain,
blobs, replay) is identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.vocabulary import SIDES, dealer_of
from crypto.circuit import ARTIFACT_NAME, CircuitShape, SelectionCircuit, SelectionOutput, report_digits
from crypto.encoding import canonical_bytes, canonical_loads, digest
from crypto.envelope import Binding
from crypto.fhe_keys import CustodianFheKeys
from crypto.tfhers import (
    OwnerReportError,
    generate_crs,
    load_public_key_material,
    open_owner_report,
    owner_report_binding,
    parameters_by_name,
    seal_owner_report,
)
from protocol.blobstore import atomic_write
from protocol.errors import ProtocolPackageError
from protocol.layout import circuit_artifact_dir

__all__ = ["BACKENDS", "BackendError", "load_circuit", "DealerSide", "CustodianSide", "EvaluatorSide",
           "decode_output", "encode_output", "digit_count", "invalid_sides", "report_binding",
           "SIMULATE_DIGIT_LIMIT", "MAX_SIMULATE_BLOB_BYTES", "load_simulation_circuit"]

BACKENDS = ("fhe", "simulate")
# [decided] what a simulate blob's digit may hold: the plaintext space an unproven TFHE-rs LWE carries below
# its padding bit (message x carry, 32 values); the circuit's own invalid flag handles 16..31
SIMULATE_DIGIT_LIMIT = 32
MAX_SIMULATE_BLOB_BYTES = 1 << 20


class BackendError(ProtocolPackageError):
    """A backend input or output is malformed."""


_CIRCUITS: dict = {}  # one circuit object per artefact per process: its simulator compiles once (seconds)


def load_circuit(terms, cache_dir: Path):
    """The compiled circuit of ``terms`` (cached on disk by crypto, and per process here)."""
    key = ("terms", repr(sorted(terms.as_dict().items())), str(Path(cache_dir).resolve()))
    if key not in _CIRCUITS:
        _CIRCUITS[key] = SelectionCircuit.for_terms(terms, Path(cache_dir))
    return _CIRCUITS[key]


def load_simulation_circuit(terms, cache_dir: Path):
    """The circuit of ``terms`` for the simulate backend alone: no FHE artefact is compiled, and its simulator
    is saved in (and loaded from) ``cache_dir``."""
    return SelectionCircuit.simulation_only(terms).with_simulation_cache(Path(cache_dir))


# --- the circuit's digit interface (one adapter) -------------------------------------------------------------

def digit_count(circuit) -> int:
    """Digits per dealer report (the same for both sides)."""
    return int(circuit.shape.digit_count)


def _report_digits(circuit, side: str, offsets, hurdle: int) -> list[int]:
    """The digits a dealer encrypts, after the circuit's range checks (CircuitError names field and value)."""
    return [int(d) for d in report_digits(circuit.shape, side, offsets, hurdle)]


def _simulate(circuit, digits_mm, digits_rm):
    return circuit.simulate_digits(list(digits_mm), list(digits_rm))


def invalid_sides(selection) -> tuple[str, ...]:
    """The sides whose input the decrypted output flags invalid ("mm", "rm", both or none)."""
    return tuple(side.value for side, flag in zip(SIDES, (selection.invalid_mm, selection.invalid_rm)) if flag)


def report_binding(chain_id: int, contract: str, round_id: int, side: str):
    """What a dealer's blob is bound to (the proof's metadata when proofs are on)."""
    return owner_report_binding(chain_id=chain_id, contract=contract, round=round_id, dealer_role=dealer_of(side))


# --- simulate backend encodings ------------------------------------------------------------------------------

def encode_output(values) -> bytes:
    """Canonical bytes of the simulated circuit's raw output."""
    return canonical_bytes({"backend": "simulate", "kind": "selection-output",
                            "values": [int(v) for v in np.asarray(values).reshape(-1)]})


def decode_output(data: bytes):
    """The simulate backend's output blob as a :class:`crypto.circuit.SelectionOutput` (same checks)."""
    try:
        obj = canonical_loads(data, name="output")
        if not isinstance(obj, dict) or obj.get("backend") != "simulate" or obj.get("kind") != "selection-output":
            raise ValueError("not a simulate-backend selection output")
        return SelectionOutput.from_values(obj["values"])
    except (ValueError, KeyError, TypeError) as exc:  # EncodingError and CircuitError are ValueErrors
        raise BackendError(f"output blob is not a simulate-backend selection output: {exc}") from None


def _simulate_key(circuit, kind: str) -> bytes:
    return canonical_bytes({"backend": "simulate", "kind": kind, "artifact": circuit.artifact_digest.hex()})


def simulate_evaluation_keys(circuit) -> bytes:
    return _simulate_key(circuit, "evaluation-keys")


def seal_simulated_report(public_key: bytes, digits, binding) -> bytes:
    """The simulate backend's report blob: the digits in plaintext, bound like a ciphertext list."""
    return canonical_bytes({"backend": "simulate", "kind": "owner-report", "version": 1,
                            "binding": binding.as_dict(), "public_key_sha256": digest(public_key),
                            "digits": len(digits), "values": [int(d) for d in digits]}, name="owner_report")


def open_simulated_report(blob: bytes, *, public_key: bytes, expected, digit_count: int) -> list[int]:
    """The structural checks of a simulate report blob (the same reasons as ``open_owner_report``)."""
    def reject(reason: str, detail: str):
        return OwnerReportError(expected.sender, expected.round, reason, detail)

    if len(blob) > MAX_SIMULATE_BLOB_BYTES:
        raise reject("oversized", f"{len(blob)} bytes, limit {MAX_SIMULATE_BLOB_BYTES}")
    try:
        obj = canonical_loads(bytes(blob), name="owner_report")
    except ValueError as exc:
        raise reject("truncated" if "truncated" in str(exc) or "end of" in str(exc) else "malformed", str(exc)) from None
    names = {"backend", "kind", "version", "binding", "public_key_sha256", "digits", "values"}
    if not isinstance(obj, dict) or set(obj) != names or obj["backend"] != "simulate" or obj["kind"] != "owner-report":
        raise reject("malformed", f"not a simulate-backend owner report (expected exactly the fields {sorted(names)})")
    try:
        claimed = Binding.from_dict(obj["binding"])
    except (TypeError, ValueError) as exc:
        raise reject("malformed", f"binding: {exc}") from None
    problems = claimed.mismatches(expected)
    if problems:
        raise reject("binding-mismatch", "; ".join(problems))
    if obj["public_key_sha256"] != digest(public_key):
        raise reject("other-public-key", "sealed for a public key other than the published one")
    values = obj["values"]
    if obj["digits"] != digit_count or not isinstance(values, list) or len(values) != digit_count:
        raise reject("wrong-digit-count", f"{obj['digits']!r} digits, expected {digit_count}")
    for i, d in enumerate(values):
        if type(d) is not int or not 0 <= d < SIMULATE_DIGIT_LIMIT:
            raise reject("wrong-block-width", f"digit {i} = {d!r} is not an int in [0, {SIMULATE_DIGIT_LIMIT})")
    return values


# --- the roles ----------------------------------------------------------------------------------------------

def _parameters(name: str | None):
    """The TFHE-rs parameter record a market names (None: the owner-encryption module's default)."""
    if name is None:
        return {}

    return {"parameters": parameters_by_name(name)}


@dataclass
class DealerSide:
    """A dealer's encryption of its own report under the market's public key (``crs``: proofs on;
    ``parameters``: the name of the market's TFHE-rs parameter record)."""

    backend: str
    circuit: object
    public_key: bytes
    crs: bytes | None = None
    parameters: str | None = None

    def digits(self, side: str, offsets, hurdle: int) -> list[int]:
        return _report_digits(self.circuit, side, offsets, hurdle)

    def seal_digits(self, digits, binding) -> bytes:
        if self.backend == "simulate":
            return seal_simulated_report(self.public_key, digits, binding)

        return seal_owner_report(self.public_key, list(digits), binding, crs=self.crs, **_parameters(self.parameters))


@dataclass
class CustodianSide:
    """The market's keys; holds the secret key (fhe) -- lives in the custodian's folder only."""

    backend: str
    circuit: object
    keys: object | None  # crypto.fhe_keys.CustodianFheKeys for "fhe"

    @classmethod
    def open(cls, backend: str, circuit, custodian_dir: Path, *, create: bool,
             evaluation_keys_digest: bytes | None = None, public_key_digest: bytes | None = None,
             input_proofs: bool = False) -> "CustodianSide":
        """``evaluation_keys_digest``, ``public_key_digest``: the published digests the loaded secret key must
        match. ``input_proofs`` (create only): generate the CRS, once per deployment."""
        if backend not in BACKENDS:
            raise BackendError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "simulate":
            return cls(backend, circuit, None)

        if create:
            crs = None
            if input_proofs:  # once per deployment; its generator knows the trapdoor (docs/OWNER_ENCRYPTION.md)

                crs = generate_crs()
            keys = CustodianFheKeys.generate(circuit, custodian_dir, crs=crs)
        else:
            keys = CustodianFheKeys.load(circuit, custodian_dir, evaluation_keys_digest=evaluation_keys_digest,
                                         public_key_digest=public_key_digest)
        return cls(backend, circuit, keys)

    def _material(self):
        return load_public_key_material(self.keys.folder)

    def parameters(self) -> tuple[str, bytes | None]:
        """(name, digest) of the TFHE-rs parameter record dealers encrypt with; ("simulate", None) there."""
        if self.backend == "simulate":
            return "simulate", None
        record = self._material().parameters
        return record.name, record.digest()

    def evaluation_keys(self) -> bytes:
        if self.backend == "simulate":
            return simulate_evaluation_keys(self.circuit)
        return self.keys.evaluation_keys_bytes()

    def public_key(self) -> bytes:
        """The key dealers encrypt under (published; its digest is in the terms digest on chain)."""
        if self.backend == "simulate":
            return _simulate_key(self.circuit, "public-key")
        return self.keys.public_key_bytes()

    def crs(self) -> bytes | None:
        """The input-proof CRS when the market has proofs on (its digest is in the terms digest too)."""
        if self.backend == "simulate":
            return None
        return self._material().crs_bytes()

    def decrypt(self, output: bytes):
        if self.backend == "simulate":
            return decode_output(output)
        return self.keys.decrypt_output(output)


@dataclass
class EvaluatorSide:
    """Opens the dealers' published blobs and runs the circuit; used by evaluators and the auditor's replay."""

    backend: str
    circuit: object
    public_key: bytes
    crs: bytes | None = None
    parameters: str | None = None

    def open_report(self, blob: bytes, expected):
        """The circuit input of one dealer's blob, after every structural check (and the proof when
        proofs are on). Raises ``crypto.tfhers.OwnerReportError(dealer, round, reason, detail)`` before
        anything is computed."""
        count = digit_count(self.circuit)
        if self.backend == "simulate":
            return open_simulated_report(blob, public_key=self.public_key, expected=expected, digit_count=count)

        return open_owner_report(blob, public_key=self.public_key, expected=expected, digit_count=count,
                                 crs=self.crs, **_parameters(self.parameters)).import_buffer

    def evaluate(self, evaluation_keys: bytes, input_mm, input_rm) -> bytes:
        """The output blob from two opened inputs (:meth:`open_report`)."""
        if self.backend == "simulate":
            if evaluation_keys != simulate_evaluation_keys(self.circuit):
                raise BackendError("evaluation keys blob does not match the simulate backend's keys")
            return encode_output(_simulate(self.circuit, input_mm, input_rm))
        return self.circuit.evaluate(evaluation_keys, input_mm, input_rm)  # refuses to run without the fixed FFT plan


def circuit_from_artifact(artifact: bytes, terms, cache_dir: Path):
    """The circuit whose server artefact is ``artifact`` (the blob named on chain), for the auditor's replay.

    The artefact is written under ``cache_dir/artifacts/<sha256>/`` and loaded from there -- the auditor
    runs exactly the bytes the chain names, not a local recompilation.
    """
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
