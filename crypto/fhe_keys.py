"""The custodian's FHE keys for one market's selection circuit.

Roles (ARCHITECTURE.md): the custodian holds the secret key and decrypts the circuit's output; it never
receives a report. Dealers encrypt their own digits under the market's TFHE-rs compact public key
(:mod:`crypto.tfhers`); evaluators import them into the public server artifact with the public evaluation
keys (:meth:`crypto.circuit.SelectionCircuit.evaluate`).

Files in the custodian's folder (mode 0700):

* ``client_key.bin`` (0600), ``compact_public_key.bin``, ``manifest.json`` (and ``crs.bin`` with input proofs) -- the TFHE-rs key
  material of :func:`crypto.tfhers.generate_public_key_material`;
* ``fhe-secret.key`` -- mode 0600, written atomically; ``header ‖ concrete keyset``. The concrete keyset is
  generated with the TFHE-rs client key's GLWE secret as the secret key of both imported inputs, so the
  output decrypts what the dealers encrypted. The header binds the file to the circuit (artifact SHA-256),
  to the evaluation keys published from it, to the compact public key the dealers use, and carries the
  keyset's SHA-256: a key of another market, a key regenerated after publication, a truncated or a corrupt
  file fails with :class:`FheKeyError` before concrete parses a byte.
* ``fhe-evaluation.keys`` -- public (0644), the self-checking evaluation-keys blob.

A market with key holders (docs/THRESHOLD.md) deals the key from :meth:`CustodianFheKeys.keyset_bytes` and then
calls :meth:`CustodianFheKeys.destroy_secret_keys`: ``fhe-secret.key`` and the TFHE-rs ``client_key.bin`` are
overwritten and unlinked, after which :meth:`CustodianFheKeys.load` fails with ``KeyFileError`` and the folder
keeps only public files (the compact public key, its manifest, the CRS, the evaluation keys).

Trap closed here (TOOLING.md): a concrete ``Client`` without a loaded secret key silently generates a fresh
one and the evaluator then returns garbage. :class:`CustodianFheKeys` only exists with a generated or loaded
keyset. Key generation uses fresh seeds from :mod:`secrets` (concrete's default seed is 0: the same secret
key for everyone). Nothing secret appears in ``repr`` or exception messages.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from crypto.circuit import SelectionCircuit, SelectionOutput, unwrap_blob, wrap_blob
from crypto.encoding import digest, to_hex
from crypto.errors import CryptoError, KeyFormatError
from crypto.identity import read_private_file, write_private_file, write_public_file
from crypto.threshold import destroy_file
from crypto.tfhers.owner_encryption import (
    CLIENT_KEY_FILE,
    CRS_FILE,
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    _concrete_key,
    _glwe_coefficients,
    generate_public_key_material,
)

__all__ = ["CustodianFheKeys", "FheKeyError", "SECRET_KEY_FILE", "EVALUATION_KEYS_FILE", "SECRET_FILES"]

SECRET_KEY_FILE = "fhe-secret.key"
EVALUATION_KEYS_FILE = "fhe-evaluation.keys"
_MAGIC = b"RMFHESK3"
# magic ‖ artifact digest ‖ evaluation-keys digest ‖ compact-public-key digest ‖ keyset digest
_HEADER = len(_MAGIC) + 4 * 32
_TFHERS_FILES = (CLIENT_KEY_FILE, PUBLIC_KEY_FILE, CRS_FILE, MANIFEST_FILE)
SECRET_FILES = (SECRET_KEY_FILE, CLIENT_KEY_FILE)  # what destroy_secret_keys removes: every file that holds a secret


class FheKeyError(KeyFormatError):
    """An FHE key file is missing, truncated, corrupt or belongs to another circuit."""


def keygen_with_tfhers_key(bridge, client_key_path: Path, *, secret_seed: int, encryption_seed: int) -> None:
    """concrete's keys for ``bridge``'s circuit with the TFHE-rs client key's GLWE secret as the secret key of
    both imported inputs (0 and 1), then checked: what :func:`crypto.tfhers.inject_client_key` does, with the
    encryption seed fresh too (concrete's default is 0). A template keyset gives concrete's serialization."""
    coefficients = _glwe_coefficients(read_private_file(Path(client_key_path)))
    bridge.client.keygen(force=True, secret_seed=secret_seed, encryption_seed=encryption_seed)
    key = _concrete_key(bridge.serialize_input_secret_key(0), coefficients)
    bridge.keygen_with_initial_keys({0: key, 1: key}, force=True, seed=secret_seed, encryption_seed=encryption_seed)
    for index in (0, 1):
        if bridge.serialize_input_secret_key(index) != key:
            raise CryptoError(f"input {index}: concrete did not take the TFHE-rs secret key")


class CustodianFheKeys:
    """The custodian's keyset for one compiled :class:`SelectionCircuit` and its compact public key."""

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
        self.public_key_digest: bytes | None = None  # SHA-256 of the compact public key, set by generate/load

    def __repr__(self) -> str:
        return f"CustodianFheKeys(circuit={to_hex(self.circuit.artifact_digest)[:16]}…, folder={str(self.folder)!r})"

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def generate(cls, circuit: SelectionCircuit, custodian_dir: Path, *, crs: bytes | None = None,
                 overwrite: bool = False) -> "CustodianFheKeys":
        """A fresh TFHE-rs client key and compact public key, concrete's keyset from the same secret; writes the
        0600 secret files and the public evaluation-keys blob. ``crs``: the input-proof CRS of a market with
        proofs on (generated once per deployment); ``None``: proofs off, no CRS."""
        from concrete.fhe import tfhers

        folder = Path(custodian_dir)
        # Refuse before generating or writing anything, so a refusal never leaves a new secret beside old
        # evaluation keys.
        names = (SECRET_KEY_FILE, EVALUATION_KEYS_FILE) + _TFHERS_FILES
        existing = [name for name in names if (folder / name).exists()]
        if existing and not overwrite:
            raise FheKeyError(f"{folder}: {', '.join(existing)} exist; refusing to overwrite (pass overwrite=True)")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        for name in existing:
            (folder / name).unlink()
        material = generate_public_key_material(folder, seed=secrets.randbits(128), crs=crs)
        client_specs_client = _fresh_client(circuit)
        bridge = tfhers.new_bridge(client_specs_client)
        keygen_with_tfhers_key(bridge, material.client_key_path, secret_seed=secrets.randbits(128),
                               encryption_seed=secrets.randbits(128))
        keys = client_specs_client.keys
        payload = keys.serialize()
        self = cls(circuit, keys, folder)
        public = self.evaluation_keys_bytes()
        public_key_digest = digest(material.public_key_path.read_bytes())
        # The public blob first: a crash in between leaves keys that are unpublished and unusable (load fails
        # on the missing secret), never a secret that does not match the published evaluation keys.
        write_public_file(folder / EVALUATION_KEYS_FILE, public, overwrite=True)
        write_private_file(folder / SECRET_KEY_FILE,
                           _MAGIC + circuit.artifact_digest + digest(public) + public_key_digest + digest(payload)
                           + payload, overwrite=True)
        self.evaluation_keys_digest = digest(public)
        self.public_key_digest = public_key_digest
        return self

    @classmethod
    def load(cls, circuit: SelectionCircuit, custodian_dir: Path, *, evaluation_keys_digest: bytes | None = None,
             public_key_digest: bytes | None = None) -> "CustodianFheKeys":
        """Load the secret file; fails clearly (mode, truncation, corruption, other circuit) before parsing.

        ``evaluation_keys_digest`` / ``public_key_digest`` (e.g. the ones published on chain) must then match
        what this secret key produced; otherwise evaluators would run with keys of another keyset, or dealers
        encrypt under another key, and the output would decrypt to garbage without any error.
        """
        from concrete import fhe

        folder = Path(custodian_dir)
        path = folder / SECRET_KEY_FILE
        data = read_private_file(path)  # KeyFileError / KeyPermissionError (mode must be 0600)
        if len(data) < _HEADER or not data.startswith(_MAGIC):
            raise FheKeyError(f"{path}: not a repo-market FHE secret key file ({len(data)} bytes)")
        fields = [data[len(_MAGIC) + 32 * k : len(_MAGIC) + 32 * (k + 1)] for k in range(4)]
        bound_to, published, public_key, keyset = fields
        if bound_to != circuit.artifact_digest:
            raise FheKeyError(
                f"{path}: key belongs to circuit {to_hex(bound_to)[:16]}…, not to this market's circuit "
                f"{to_hex(circuit.artifact_digest)[:16]}…"
            )
        if evaluation_keys_digest is not None and published != bytes(evaluation_keys_digest):
            raise FheKeyError(
                f"{path}: key produced evaluation keys {to_hex(published)[:16]}…, but the published evaluation keys "
                f"are {to_hex(bytes(evaluation_keys_digest))[:16]}… (keys regenerated after publication?)"
            )
        if public_key_digest is not None and public_key != bytes(public_key_digest):
            raise FheKeyError(f"{path}: key belongs to public key {to_hex(public_key)[:16]}…, not to the published "
                              f"{to_hex(bytes(public_key_digest))[:16]}…")
        payload = data[_HEADER:]
        if digest(payload) != keyset:
            raise FheKeyError(f"{path}: keyset does not match its recorded SHA-256 (truncated or corrupt)")
        on_disk = folder / PUBLIC_KEY_FILE
        if not on_disk.is_file() or digest(on_disk.read_bytes()) != public_key:
            raise FheKeyError(f"{on_disk}: missing or not the compact public key this secret key belongs to")
        try:
            keys = fhe.Keys.deserialize(payload)
        except Exception as error:  # pragma: no cover - digest check above catches corruption first
            raise FheKeyError(f"{path}: keyset cannot be parsed ({type(error).__name__})") from None
        self = cls(circuit, keys, folder)
        self.evaluation_keys_digest = published
        self.public_key_digest = public_key
        return self

    def keyset_bytes(self) -> bytes:
        """The serialized concrete keyset (secret: the threshold dealer's input, never written elsewhere)."""
        if self._keys is None:
            raise FheKeyError(f"{self.folder}: the secret keys were destroyed after dealing")
        return self._keys.serialize()

    def destroy_secret_keys(self) -> None:
        """Overwrite and unlink every secret file of the folder (the concrete keyset and the TFHE-rs client key)
        and drop the in-memory keyset: after dealing, the custodian keeps only public files. The limits of
        deleting a file (journaling, backups, the key having lived in memory) are in docs/THRESHOLD.md."""
        for name in SECRET_FILES:
            destroy_file(self.folder / name)
        self._keys = self._client = None

    # public material ----------------------------------------------------------------------------------------

    def evaluation_keys_bytes(self) -> bytes:
        """The public evaluation-keys blob (self-checking; publish its SHA-256 with the terms)."""
        return wrap_blob("evaluation_keys", self._client.evaluation_keys.serialize())

    def public_key_bytes(self) -> bytes:
        """The TFHE-rs compact public key the dealers encrypt their digits under (publish its SHA-256)."""
        return (self.folder / PUBLIC_KEY_FILE).read_bytes()

    @property
    def client_key_path(self) -> Path:
        """The TFHE-rs client key (0600): the same GLWE secret as the concrete keyset's imported inputs."""
        return self.folder / CLIENT_KEY_FILE

    # custodian operations -----------------------------------------------------------------------------------

    def decrypt_output(self, output: bytes, *, expected_digest: bytes | None = None) -> SelectionOutput:
        """Decrypt only the circuit's output blob (hash-checked first) into a :class:`SelectionOutput`."""
        from concrete import fhe

        if self._client is None:
            raise FheKeyError(f"{self.folder}: the secret keys were destroyed after dealing; k holders open outputs")
        payload = unwrap_blob("ciphertext_out", output, expected_digest=expected_digest)
        values = self._client.decrypt(fhe.Value.deserialize(payload))
        return SelectionOutput.from_values(np.asarray(values))


def _fresh_client(circuit: SelectionCircuit):
    from concrete import fhe

    return fhe.Client(circuit.client_specs)
