"""The custodian's FHE keys for one market's selection circuit.

Roles (ARCHITECTURE.md): the custodian holds the TFHE secret key and is the only party that encrypts
reports and decrypts the circuit's output; the evaluation keys are a public blob that evaluators use with
the public server artifact (:meth:`crypto.circuit.SelectionCircuit.evaluate`).

Files in the custodian's folder:

* ``fhe-secret.key`` — mode 0600 in a 0700 folder, written atomically; ``header ‖ concrete keyset``. The
  header binds the file to the circuit (artifact SHA-256) and to the evaluation keys published from it
  (their blob's SHA-256), and carries the keyset's SHA-256, so a key of another market, a key regenerated
  after the evaluation keys were published, a truncated or a corrupt file fails with :class:`FheKeyError`
  before concrete parses a byte.
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
from crypto.errors import KeyFormatError
from crypto.identity import read_private_file, write_private_file, write_public_file

__all__ = ["CustodianFheKeys", "FheKeyError", "SECRET_KEY_FILE", "EVALUATION_KEYS_FILE"]

SECRET_KEY_FILE = "fhe-secret.key"
EVALUATION_KEYS_FILE = "fhe-evaluation.keys"
_MAGIC = b"RMFHESK2"
_HEADER = len(_MAGIC) + 32 + 32 + 32  # magic ‖ artifact digest ‖ evaluation-keys digest ‖ keyset digest


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
        self.evaluation_keys_digest: bytes | None = None  # SHA-256 of the published blob, set by generate/load

    def __repr__(self) -> str:
        return f"CustodianFheKeys(circuit={to_hex(self.circuit.artifact_digest)[:16]}…, folder={str(self.folder)!r})"

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def generate(cls, circuit: SelectionCircuit, custodian_dir: Path, *, overwrite: bool = False) -> "CustodianFheKeys":
        """Generate a fresh keyset, write the 0600 secret file and the public evaluation-keys blob."""
        from concrete import fhe

        folder = Path(custodian_dir)
        # Refuse before generating or writing anything, so a refusal never leaves a new secret beside old
        # evaluation keys.
        existing = [name for name in (SECRET_KEY_FILE, EVALUATION_KEYS_FILE) if (folder / name).exists()]
        if existing and not overwrite:
            raise FheKeyError(f"{folder}: {', '.join(existing)} exist; refusing to overwrite (pass overwrite=True)")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        keys = fhe.Keys(circuit.client_specs)
        keys.generate(secret_seed=secrets.randbits(128), encryption_seed=secrets.randbits(128))
        payload = keys.serialize()
        self = cls(circuit, keys, folder)
        public = self.evaluation_keys_bytes()
        # The public blob first: a crash in between leaves keys that are unpublished and unusable (load fails
        # on the missing secret), never a secret that does not match the published evaluation keys.
        write_public_file(folder / EVALUATION_KEYS_FILE, public, overwrite=True)
        write_private_file(folder / SECRET_KEY_FILE,
                           _MAGIC + circuit.artifact_digest + digest(public) + digest(payload) + payload,
                           overwrite=True)
        self.evaluation_keys_digest = digest(public)
        return self

    @classmethod
    def load(cls, circuit: SelectionCircuit, custodian_dir: Path, *,
             evaluation_keys_digest: bytes | None = None) -> "CustodianFheKeys":
        """Load the secret file; fails clearly (mode, truncation, corruption, other circuit) before parsing.

        ``evaluation_keys_digest`` (e.g. the one published on chain) must then match the evaluation keys
        this secret key produced; otherwise evaluators would be running with keys of another keyset and the
        output would decrypt to garbage without any error.
        """
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
        published = data[len(_MAGIC) + 32 : len(_MAGIC) + 64]
        if evaluation_keys_digest is not None and published != bytes(evaluation_keys_digest):
            raise FheKeyError(
                f"{path}: key produced evaluation keys {to_hex(published)[:16]}…, but the published evaluation keys "
                f"are {to_hex(bytes(evaluation_keys_digest))[:16]}… (keys regenerated after publication?)"
            )
        payload = data[_HEADER:]
        if digest(payload) != data[len(_MAGIC) + 64 : _HEADER]:
            raise FheKeyError(f"{path}: keyset does not match its recorded SHA-256 (truncated or corrupt)")
        try:
            keys = fhe.Keys.deserialize(payload)
        except Exception as error:  # pragma: no cover - digest check above catches corruption first
            raise FheKeyError(f"{path}: keyset cannot be parsed ({type(error).__name__})") from None
        self = cls(circuit, keys, Path(custodian_dir))
        self.evaluation_keys_digest = published
        return self

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

