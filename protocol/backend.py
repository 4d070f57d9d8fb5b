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

from crypto.encoding import canonical_bytes, canonical_loads

__all__ = ["BACKENDS", "BackendError", "load_circuit", "CustodianSide", "EvaluatorSide",
           "decode_output", "encode_output"]

BACKENDS = ("fhe", "simulate")


class BackendError(Exception):
    """A backend input or output is malformed."""


def load_circuit(terms, cache_dir: Path):
    from crypto.circuit import SelectionCircuit

    return SelectionCircuit.for_terms(terms, Path(cache_dir))


def encode_output(out) -> bytes:
    """Canonical bytes of a simulated SelectionOutput (the simulate backend's 'ciphertext' output)."""
    return canonical_bytes({
        "backend": "simulate", "kind": "selection-output",
        "trade": bool(out.trade), "invalid": bool(out.invalid), "volume": int(out.volume),
        "r_mm_offset": int(out.r_mm_offset), "r_rm_offset": int(out.r_rm_offset),
    })


def decode_output(data: bytes):
    from crypto.circuit import SelectionOutput

    try:
        obj = canonical_loads(data, name="output")
        if not isinstance(obj, dict) or obj.get("backend") != "simulate" or obj.get("kind") != "selection-output":
            raise ValueError("not a simulate-backend selection output")
        return SelectionOutput(trade=obj["trade"], invalid=obj["invalid"], volume=obj["volume"],
                               r_mm_offset=obj["r_mm_offset"], r_rm_offset=obj["r_rm_offset"])
    except (ValueError, KeyError, TypeError) as exc:  # EncodingError is a ValueError
        raise BackendError(f"output blob is not a simulate-backend selection output: {exc}") from None


def _encode_input(side: str, offsets, hurdle: int) -> bytes:
    return canonical_bytes({"backend": "simulate", "kind": "selection-input", "side": side,
                            "offsets": [int(v) for v in offsets], "hurdle": int(hurdle)})


def _decode_input(data: bytes, side: str):
    try:
        obj = canonical_loads(data, name=f"{side} input")
    except ValueError:
        raise BackendError(f"{side} input blob is not a simulate-backend input") from None
    if not isinstance(obj, dict) or obj.get("backend") != "simulate" or obj.get("side") != side:
        raise BackendError(f"{side} input blob is not a simulate-backend input for side {side!r}")
    return obj["offsets"], obj["hurdle"]


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
    def open(cls, backend: str, circuit, custodian_dir: Path, *, create: bool) -> "CustodianSide":
        if backend not in BACKENDS:
            raise BackendError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "simulate":
            return cls(backend, circuit, None)
        from crypto.fhe_keys import CustodianFheKeys

        keys = (CustodianFheKeys.generate(circuit, custodian_dir) if create
                else CustodianFheKeys.load(circuit, custodian_dir))
        return cls(backend, circuit, keys)

    def evaluation_keys(self) -> bytes:
        if self.backend == "simulate":
            return simulate_evaluation_keys(self.circuit)
        return self.keys.evaluation_keys_bytes()

    def encrypt(self, side: str, offsets, hurdle: int) -> bytes:
        if self.backend == "simulate":
            return _encode_input(side, offsets, hurdle)
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
            mm, h_mm = _decode_input(ct_mm, "mm")
            rm, h_rm = _decode_input(ct_rm, "rm")
            return encode_output(self.circuit.simulate(mm, h_mm, rm, h_rm))
        return self.circuit.evaluate(evaluation_keys, ct_mm, ct_rm)


def circuit_from_artifact(artifact: bytes, terms, cache_dir: Path):
    """The circuit whose artefact is ``artifact`` (the blob named on chain), for replay by the auditor.

    Uses ``SelectionCircuit.from_artifact`` when crypto provides it; otherwise compiles for the terms and
    refuses unless the compiled artefact is byte-identical to the published one.
    """
    from crypto.circuit import SelectionCircuit
    from crypto.encoding import digest

    loader = getattr(SelectionCircuit, "from_artifact", None)
    if loader is not None:
        circuit = loader(artifact, terms)
    else:
        circuit = SelectionCircuit.for_terms(terms, Path(cache_dir))
    if circuit.artifact_digest != digest(artifact):
        raise BackendError(f"circuit artefact {digest(artifact).hex()} is not the circuit compiled for the terms "
                           f"({circuit.artifact_digest.hex()})")
    return circuit
