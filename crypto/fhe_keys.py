"""The custodian's FHE keys for one market's selection circuit.

Roles (ARCHITECTURE.md): the custodian holds the TFHE secret key and is the only party that encrypts
reports and decrypts the circuit's output; the evaluation keys are a public blob that evaluators use with
the public server artifact (:meth:`crypto.circuit.SelectionCircuit.evaluate`).

Files in the custodian's folder:

* ``fhe-secret.key`` — mode 0600, written atomically; ``header ‖ concrete keyset``. The header binds the
  file to the circuit (artifact SHA-256) and carries the keyset's SHA-256, so a key of another market, a
  truncated or a corrupt file fails with :class:`FheKeyError` before concrete parses a byte.
* ``fhe-evaluation.keys`` — public (0644), the self-checking evaluation-keys blob.

Trap closed here (TOOLING.md): a concrete ``Client`` without a loaded secret key silently generates a
fresh one on ``encrypt`` and the evaluator then returns garbage. :class:`CustodianFheKeys` only exists with
a generated or loaded keyset, and every encrypt/decrypt goes through it. Key generation uses fresh 128-bit
seeds from :mod:`secrets` (concrete's default seed is 0: the same secret key for everyone).
Nothing secret appears in ``repr`` or exception messages.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from crypto.circuit import SelectionCircuit, SelectionOutput, pack_report, unwrap_blob, wrap_blob
from crypto.encoding import digest, to_hex
from crypto.errors import KeyFileError, KeyFormatError
from crypto.identity import read_private_file, write_private_file, write_public_file

__all__ = ["CustodianFheKeys", "FheKeyError", "SECRET_KEY_FILE", "EVALUATION_KEYS_FILE"]

SECRET_KEY_FILE = "fhe-secret.key"
EVALUATION_KEYS_FILE = "fhe-evaluation.keys"
_MAGIC = b"RMFHESK1"
_HEADER = len(_MAGIC) + 32 + 32  # magic ‖ artifact digest ‖ keyset digest


class FheKeyError(KeyFormatError):
    """An FHE key file is missing, truncated, corrupt or belongs to another circuit."""


class CustodianFheKeys:
    """The custodian's keyset for one compiled :class:`SelectionCircuit`."""

    def __init__(self, circuit: SelectionCircuit, keys, folder: Path):  # use generate() / load()
        from concrete import fhe

        if keys is None or not keys.are_generated:
            raise FheKeyError("CustodianFheKeys needs a generated or loaded keyset")
        self.circuit = circuit
        self.folder = Path(folder)
        self._keys = keys
        self._client = fhe.Client(circuit.client_specs)
        self._client.keys = keys

    def __repr__(self) -> str:
        return f"CustodianFheKeys(circuit={to_hex(self.circuit.artifact_digest)[:16]}…, folder={str(self.folder)!r})"

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def generate(cls, circuit: SelectionCircuit, custodian_dir: Path, *, overwrite: bool = False) -> "CustodianFheKeys":
        """Generate a fresh keyset, write the 0600 secret file and the public evaluation-keys blob."""
        from concrete import fhe

        folder = Path(custodian_dir)
        folder.mkdir(parents=True, exist_ok=True)
        keys = fhe.Keys(circuit.client_specs)
        keys.generate(secret_seed=secrets.randbits(128), encryption_seed=secrets.randbits(128))
        payload = keys.serialize()
        write_private_file(folder / SECRET_KEY_FILE, _MAGIC + circuit.artifact_digest + digest(payload) + payload,
                           overwrite=overwrite)
        self = cls(circuit, keys, folder)
        write_public_file(folder / EVALUATION_KEYS_FILE, self.evaluation_keys_bytes(), overwrite=overwrite)
        return self

    @classmethod
    def load(cls, circuit: SelectionCircuit, custodian_dir: Path) -> "CustodianFheKeys":
        """Load the secret file; fails clearly (mode, truncation, corruption, other circuit) before parsing."""
        from concrete import fhe

        path = Path(custodian_dir) / SECRET_KEY_FILE
        data = read_private_file(path)  # KeyFileError / KeyPermissionError (mode must be 0600)
        if len(data) < _HEADER or not data.startswith(_MAGIC):
            raise FheKeyError(f"{path}: not a repo-market FHE secret key file ({len(data)} bytes)")
        bound_to = data[len(_MAGIC) : len(_MAGIC) + 32]
        if bound_to != circuit.artifact_digest:
            raise FheKeyError(
                f"{path}: key belongs to circuit {to_hex(bound_to)[:16]}…, not to this market's circuit "
                f"{to_hex(circuit.artifact_digest)[:16]}…"
            )
        payload = data[_HEADER:]
        if digest(payload) != data[len(_MAGIC) + 32 : _HEADER]:
            raise FheKeyError(f"{path}: keyset does not match its recorded SHA-256 (truncated or corrupt)")
        try:
            keys = fhe.Keys.deserialize(payload)
        except Exception as error:  # pragma: no cover - digest check above catches corruption first
            raise FheKeyError(f"{path}: keyset cannot be parsed ({type(error).__name__})") from None
        return cls(circuit, keys, Path(custodian_dir))

    # public material ----------------------------------------------------------------------------------------

    def evaluation_keys_bytes(self) -> bytes:
        """The public evaluation-keys blob (self-checking; publish its SHA-256 with the terms)."""
        return wrap_blob("evaluation_keys", self._client.evaluation_keys.serialize())

    # custodian operations -----------------------------------------------------------------------------------

    def _encrypt(self, side: str, offsets, hurdle) -> bytes:
        packed = pack_report(self.circuit.shape, side, offsets, hurdle)  # range errors before encrypting
        args = (packed, None) if side == "mm" else (None, packed)
        value = self._client.encrypt(*args)[0 if side == "mm" else 1]
        return wrap_blob(f"ciphertext_{side}", value.serialize())

    def encrypt_mm(self, offsets, hurdle) -> bytes:
        """Encrypt BDmm's report ``[b̂_0..b̂_N, h_mm]`` (argument 0 of the circuit)."""
        return self._encrypt("mm", offsets, hurdle)

    def encrypt_rm(self, offsets, hurdle) -> bytes:
        """Encrypt BDrm's report ``[â_0..â_N, h_rm]`` (argument 1 of the circuit)."""
        return self._encrypt("rm", offsets, hurdle)

    def decrypt_output(self, output: bytes, *, expected_digest: bytes | None = None) -> SelectionOutput:
        """Decrypt only the circuit's output blob (hash-checked first) into a :class:`SelectionOutput`."""
        from concrete import fhe

        payload = unwrap_blob("ciphertext_out", output, expected_digest=expected_digest)
        values = self._client.decrypt(fhe.Value.deserialize(payload))
        return SelectionOutput.from_values(np.asarray(values))


# KeyFileError is re-exported for callers that catch "any key file problem".
KeyFileError = KeyFileError
