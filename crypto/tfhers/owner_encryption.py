"""Dealer-side public-key encryption with input proofs, imported into concrete-python circuits.

Why one module over 500 lines: every function here depends on the same pinned byte layouts (node-tfhe
0.10's client key and proven list, concrete 2.11's secret key and import buffer); keeping them side by
side keeps each layout check next to its use. It splits when the protocol wires it (docs/OWNER_ENCRYPTION.md §9).

Who holds what
--------------
- The custodian generates a TFHE-rs client key with node-tfhe 0.10.0 (the tfhe-rs version embedded in
  concrete-python 2.11) and publishes the *compact public key* and the *CRS* (the public parameters of
  the input proof) with their digests. The client key never leaves its folder (mode 0600). Concrete's
  evaluation keys are generated from the same GLWE secret key (:func:`inject_client_key`).
- A dealer encrypts its digits locally (:func:`encrypt_report`): one LWE per 4-bit digit, pushed as a
  ``u4`` (two 2-bit blocks packed into one LWE by ``build_with_proof_packed``), with a proof of
  well-formedness bound to the metadata ``owner_report_binding(...).to_bytes()``.
- An evaluator or the auditor checks the blob and the proof (:func:`verify_and_expand`) before
  anything is computed, and gets the buffer that ``bridge.import_value`` takes.

Parameters [decided, measured in ``benchmarks/bench_owner_encryption.py``]
-------------------------------------------------------------------------
concrete's TFHE-rs interoperability set (lwe 902, glwe 1 x 4096, pbs 15/2, ks 3/6, message 4, carry 8,
"Big" encryption key), except that the GLWE (= compact-public-key encryption) noise is TUniform with
bound 2^TUNIFORM_BOUND_LOG2: tfhe-rs 0.10 proves only bounded noise. concrete is given its own Gaussian
std for the 4096 partition (``CONCRETE_GLWE_STD``): its runtime refuses an import whose declared
variance differs from the partition's by more than 1e-40 (measured: the TUniform-equivalent std was
refused), and it uses the std only to model a fresh input's noise. TUniform(4) has std
sqrt((2^9 + 1) / 6) = 9.2 (in units of 2^-64) against concrete's 4.0: at least as much noise as
concrete assumes for the secret key's security [derived]. A compact-public-key encryption carries
more noise than a fresh one (about sqrt(4096) times, std ~ 2^9.3), still ~2^-35 of the keyswitch noise
that follows, which dominates concrete's failure model [derived]; the benchmark measures the error rate.

What the proof binds (tfhe-rs 0.10.0 ``verify_and_expand``) [derived from its sources]
------------------------------------------------------------------------------------------
Each LWE is an encryption under *this* public key of a plaintext in [0, 32) (message + carry space,
padding bit clear) with noise inside the TUniform bound, and the proof is bound to the metadata bytes.
It does *not* bind a digit to [0, 16): the circuit's first lookup must map 16..31 to "invalid".
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crypto.encoding import canonical_bytes, canonical_loads, digest, to_hex
from crypto.envelope import Binding
from crypto.errors import CryptoError, EncodingError
from crypto.identity import read_private_file, write_private_file, write_public_file

OWNER_REPORT_PURPOSE = "owner-report"
BLOB_VERSION = 1
DIGIT_BITS = 4  # one packed LWE = two 2-bit blocks = one base-16 digit  [decided]
DIGIT_LIMIT = 2**DIGIT_BITS
PLAINTEXT_LIMIT = 32  # what the proof bounds: message (4) x carry (8) space, padding bit clear
TUNIFORM_BOUND_LOG2 = 4  # [decided] see the module docstring
PROVEN_DIGIT_LIMIT = 72  # [decided] digits one CRS proves in one sub-list (N = 16 needs 53)
CONCRETE_GLWE_STD = 2.168404344971009e-19  # concrete's own std for glwe 1 x 4096 (its interop set)
LWE_SIZE = 4097
POLYNOMIAL_SIZE = 4096
MAX_BLOB_BYTES = 4 * 1024 * 1024  # [decided] well above a report (bench_owner_encryption.json report.best.blob_bytes)
# The key folder's files; node/tfhe_tool.js keygen writes the first three under the same names.
CLIENT_KEY_FILE = "client_key.bin"
PUBLIC_KEY_FILE = "compact_public_key.bin"
CRS_FILE = "crs.bin"
MANIFEST_FILE = "manifest.json"
NODE_TIMEOUT_S = 900
LAST_ENCRYPTION_CPU_MS = [0]  # node CPU time of the last proof (the benchmark reads it)
CRS_TIMEOUT_S = 7200  # CRS generation is the slow step in single-threaded WASM (bench_owner_encryption.py)

_TOOL = Path(__file__).resolve().parent / "node" / "tfhe_tool.js"
_ROOT = Path(__file__).resolve().parents[2]


# --- errors ---------------------------------------------------------------------------------------------


class OwnerReportError(CryptoError, ValueError):
    """An owner-encrypted report is rejected. ``reason`` is one of: ``oversized``, ``malformed``,
    ``truncated``, ``binding-mismatch``, ``other-public-key``, ``wrong-digit-count``,
    ``wrong-block-width``, ``wrong-parameters``, ``proof-rejected``. The message names the dealer, the
    round and the reason (public values only)."""

    def __init__(self, dealer: str, round: int, reason: str, detail: str) -> None:
        self.dealer, self.round, self.reason, self.detail = dealer, round, reason, detail
        super().__init__(f"owner report of {dealer} for round {round} rejected ({reason}): {detail}")


class NodeToolError(CryptoError):
    """node-tfhe is missing or the helper failed (not a verdict on the input)."""


# --- node-tfhe ------------------------------------------------------------------------------------------


def node_tfhe_dir() -> Path | None:
    """node-tfhe 0.10.0: ``$REPO_MARKET_NODE_TFHE``, else ``.tools/`` (scripts/setup.sh), else
    ``.tools-tfhe/``."""
    env = os.environ.get("REPO_MARKET_NODE_TFHE")
    candidates = [Path(env)] if env else []
    candidates += [_ROOT / ".tools" / "node_modules" / "node-tfhe",
                   _ROOT / ".tools-tfhe" / "node_modules" / "node-tfhe"]
    for candidate in candidates:
        package = candidate / "package.json"
        if package.is_file():
            version = json.loads(package.read_text()).get("version")
            if version != "0.10.0":
                raise NodeToolError(f"{candidate}: node-tfhe {version}, expected the pinned 0.10.0")
            return candidate
    return None


def node_tfhe_available() -> bool:
    return node_tfhe_dir() is not None and shutil.which("node") is not None


CRS_FILE_NAME = f"crs-k{PROVEN_DIGIT_LIMIT}-tuniform{TUNIFORM_BOUND_LOG2}.bin"


def cached_crs_path() -> Path:
    """Where this machine keeps the proof CRS (one per parameter set, independent of any key; generating it
    takes minutes): ``$REPO_MARKET_TFHERS_CRS``, else the first existing of the user cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``, ``repo-market/tfhers/``; it outlives a checkout, like pip's cache),
    ``.tools/tfhers/``, ``.tools-tfhe/``; if none exists, the first candidate (where to generate it)."""
    env = os.environ.get("REPO_MARKET_TFHERS_CRS")
    candidates = [Path(env)] if env else []
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "repo-market" / "tfhers"
    candidates += [cache / CRS_FILE_NAME, _ROOT / ".tools" / "tfhers" / CRS_FILE_NAME,
                   _ROOT / ".tools-tfhe" / CRS_FILE_NAME]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _run_tool(
    command: str, request: dict[str, Any], *, dealer: str = "", round: int = -1, timeout: float = NODE_TIMEOUT_S
) -> dict[str, Any]:
    package = node_tfhe_dir()
    node = shutil.which("node")
    if package is None or node is None:
        raise NodeToolError("node-tfhe 0.10.0 not installed (run scripts/setup.sh) or node not on PATH")
    env = {"PATH": os.environ.get("PATH", ""), "REPO_MARKET_NODE_TFHE": str(package)}
    proc = subprocess.run(
        [node, str(_TOOL), command],
        input=json.dumps(request).encode(),
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode == 3 and out:
        answer = json.loads(out[-1])
        raise OwnerReportError(dealer, round, answer["error"], answer["detail"][:300])
    if proc.returncode != 0 or not out:
        tail = proc.stderr.decode(errors="replace")[-600:]
        raise NodeToolError(f"tfhe_tool {command} failed (exit {proc.returncode}): {tail}")
    return json.loads(out[-1])


# --- parameters and the concrete side -------------------------------------------------------------------


def concrete_params_dict() -> dict[str, Any]:
    """The TFHE-rs parameters as concrete's ``get_type_from_params_dict`` reads them (see the module
    docstring for the std)."""
    return {
        "lwe_dimension": 902,
        "glwe_dimension": 1,
        "polynomial_size": POLYNOMIAL_SIZE,
        "lwe_noise_distribution": {"Gaussian": {"std": 1.0994794733558207e-6, "mean": 0.0}},
        "glwe_noise_distribution": {"Gaussian": {"std": CONCRETE_GLWE_STD, "mean": 0.0}},
        "pbs_base_log": 15,
        "pbs_level": 2,
        "ks_base_log": 3,
        "ks_level": 6,
        "message_modulus": 4,
        "carry_modulus": 8,
        "max_noise_level": 10,
        "log2_p_fail": -64.084,
        "ciphertext_modulus": {"modulus": 0, "scalar_bits": 64},
        "encryption_key_choice": "Big",
    }


def digit_type():
    """The concrete tfhers type of one imported digit: a 1-block ``uint2`` (message 4, carry 8).

    concrete's import checks width, block count and moduli against the serialized FheUint2, so the
    type must say ``uint2``; :func:`to_native_digits` reads the whole 5-bit message+carry space, where
    the packed digit lives. Inputset values of this type are limited to [0, 3] by concrete
    (``TFHERSInteger``): bit widths after the import must come from hints, not from the inputset.
    """
    from concrete.fhe import tfhers

    return tfhers.get_type_from_params_dict(concrete_params_dict(), False, 2)


def to_native_digits(x):
    """Inside a traced circuit: the imported digits as 5-bit native values (0..31; an honest dealer's
    are 0..15). concrete's ``to_native`` looks up all 32 message+carry values of a block; the hint makes
    the result 5 bits wide whatever the inputset says."""
    from concrete import fhe
    from concrete.fhe import tfhers

    return fhe.hint(tfhers.to_native(x), bit_width=5)


# --- custodian ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKeyMaterial:
    """What :func:`generate_public_key_material` wrote (paths) and the digests to publish."""

    folder: Path
    public_key_digest: str
    crs_digest: str
    sizes: dict[str, int] = field(compare=False)
    times_ms: dict[str, int] = field(compare=False)

    @property
    def client_key_path(self) -> Path:
        return self.folder / CLIENT_KEY_FILE

    @property
    def public_key_path(self) -> Path:
        return self.folder / PUBLIC_KEY_FILE

    @property
    def crs_path(self) -> Path:
        return self.folder / CRS_FILE

    def __repr__(self) -> str:  # no key material in reprs
        return f"PublicKeyMaterial(folder={str(self.folder)!r}, public_key_digest={self.public_key_digest!r})"


def generate_public_key_material(
    folder: Path, *, seed: int, crs: bytes | None = None, max_digits: int = PROVEN_DIGIT_LIMIT
) -> PublicKeyMaterial:
    """Custodian: a fresh client key (``client_key.bin``, 0600), its compact public key
    (``compact_public_key.bin``) and the proof CRS (``crs.bin``) in ``folder``, plus ``manifest.json``
    with the digests to publish.

    ``crs``: reuse existing public parameters (they depend only on the parameters and ``max_digits``,
    not on the key; generating them is the slow step, see the benchmark). ``seed`` seeds the client key
    [decided: deterministic seeds, like the rest of the project's key generation].
    """
    folder = Path(folder)
    if type(seed) is not int or not 0 <= seed < 2**64:
        raise ValueError(f"seed: {seed!r} is not an int in [0, 2**64)")
    if type(max_digits) is not int or not 1 <= max_digits <= 4096:
        raise ValueError(f"max_digits: {max_digits!r} outside [1, 4096]")
    for name in (CLIENT_KEY_FILE, PUBLIC_KEY_FILE, CRS_FILE, MANIFEST_FILE):
        if (folder / name).exists():
            raise FileExistsError(f"{folder / name}: exists; refusing to overwrite key material")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfhers-keygen-") as work:
        os.chmod(work, 0o700)
        answer = _run_tool(
            "keygen",
            {"folder": work, "seed": str(seed), "max_digits": max_digits, "tuniform_bound_log2": TUNIFORM_BOUND_LOG2,
             "skip_crs": crs is not None},
            timeout=NODE_TIMEOUT_S if crs is not None else CRS_TIMEOUT_S,
        )
        client_key = Path(work, CLIENT_KEY_FILE).read_bytes()
        public_key = Path(work, PUBLIC_KEY_FILE).read_bytes()
        crs_bytes = crs if crs is not None else Path(work, CRS_FILE).read_bytes()
    _glwe_coefficients(client_key)  # refuse a layout we do not understand before publishing anything
    write_private_file(folder / CLIENT_KEY_FILE, client_key)
    write_public_file(folder / PUBLIC_KEY_FILE, public_key)
    write_public_file(folder / CRS_FILE, crs_bytes)
    material = PublicKeyMaterial(
        folder=folder,
        public_key_digest=to_hex(digest(public_key)),
        crs_digest=to_hex(digest(crs_bytes)),
        sizes={"client_key": len(client_key), "public_key": len(public_key), "crs": len(crs_bytes)},
        times_ms=answer["times"],
    )
    manifest = {
        "node_tfhe": "0.10.0",
        "tuniform_bound_log2": TUNIFORM_BOUND_LOG2,
        "digit_bits": DIGIT_BITS,
        "max_digits": max_digits,
        "public_key_sha256": material.public_key_digest,
        "crs_sha256": material.crs_digest,
    }
    write_public_file(folder / MANIFEST_FILE, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return material


def _glwe_coefficients(client_key: bytes) -> np.ndarray:
    """The GLWE secret key of a node-tfhe 0.10 ``TfheClientKey.serialize()`` (bincode): a u64 length
    (4096) at offset 0, then 4096 u64 coefficients in {0, 1}. A byte-layout dependency: checked."""
    if len(client_key) < 8 + 8 * POLYNOMIAL_SIZE:
        raise CryptoError("client key: too short for a 4096-coefficient GLWE key")
    n = int.from_bytes(client_key[:8], "little")
    if n != POLYNOMIAL_SIZE:
        raise CryptoError(f"client key: GLWE key length {n} at offset 0, expected {POLYNOMIAL_SIZE}")
    coefficients = np.frombuffer(client_key, dtype="<u8", count=n, offset=8)
    if not np.all(coefficients <= 1) or coefficients.sum() == 0:
        raise CryptoError("client key: GLWE coefficients are not a binary key (layout changed?)")
    return coefficients


def inject_client_key(bridge, client_key_path: Path, input_indices: Sequence[int], *, seed: int | None = None) -> None:
    """Custodian: generate the circuit's keys (``bridge.keygen_with_initial_keys``) with the TFHE-rs
    client key's GLWE key as the secret key of the tfhers inputs ``input_indices``, then check that
    concrete holds exactly those coefficients. A wrong layout would otherwise decrypt to garbage
    without an error (the end-to-end test also decrypts known digits through a circuit)."""
    coefficients = _glwe_coefficients(read_private_file(Path(client_key_path)))
    if not input_indices:
        raise ValueError("input_indices: at least one tfhers input")
    bridge.client.keygen(force=True, secret_seed=seed)  # a template of concrete's key serialization
    template = bridge.serialize_input_secret_key(input_indices[0])
    key = _concrete_key(template, coefficients)
    bridge.keygen_with_initial_keys({i: key for i in input_indices}, force=True, seed=seed)
    for i in input_indices:
        if bridge.serialize_input_secret_key(i) != key:
            raise CryptoError(f"input {i}: concrete did not take the TFHE-rs secret key")


def _concrete_key(template: bytes, coefficients: np.ndarray) -> bytes:
    """concrete 2.11's serialized LWE secret key ends with a u64 length then the coefficients."""
    n = len(coefficients)
    body = 8 * n
    if len(template) < body + 8 or int.from_bytes(template[-body - 8 : -body], "little") != n:
        raise CryptoError(f"concrete secret key: no {n}-coefficient key at the end of the serialization")
    return template[:-body] + coefficients.astype("<u8").tobytes()


# --- dealer ---------------------------------------------------------------------------------------------


def owner_report_binding(*, chain_id: int, contract: str, round: int, dealer_role: str) -> Binding:
    """What a dealer's input proof is bound to: its bytes are the proof's metadata."""
    return Binding(OWNER_REPORT_PURPOSE, chain_id, contract, round, dealer_role, "evaluator")


def _check_digits(digits: Sequence[int]) -> list[int]:
    values = list(digits)
    if not 1 <= len(values) <= PROVEN_DIGIT_LIMIT:
        raise ValueError(f"digits: {len(values)} digits, expected 1..{PROVEN_DIGIT_LIMIT}")
    for i, d in enumerate(values):
        if type(d) is not int or not 0 <= d < DIGIT_LIMIT:
            raise ValueError(f"digits[{i}]: {d!r} is not an int in [0, {DIGIT_LIMIT})")
    return values


def encrypt_report(
    public_key: bytes, crs: bytes, digits: Sequence[int], binding: Binding, *, compute_load: str = "proof"
) -> bytes:
    """Dealer: the report blob — ``canonical_bytes({version, binding, digits, public_key_sha256,
    list})`` with ``list`` a ``ProvenCompactCiphertextList`` (bincode) of one packed LWE per digit and
    a proof bound to ``binding.to_bytes()``. Digits are validated before anything is encrypted.
    ``compute_load``: tfhe-rs's ``ZkComputeLoad`` — ``"proof"`` (the prover does more) or ``"verify"``."""
    values = _check_digits(digits)
    if compute_load not in ("proof", "verify"):
        raise ValueError(f"compute_load: {compute_load!r}, expected 'proof' or 'verify'")
    if binding.purpose != OWNER_REPORT_PURPOSE:
        raise ValueError(f"binding.purpose: {binding.purpose!r}, expected {OWNER_REPORT_PURPOSE!r}")
    with tempfile.TemporaryDirectory(prefix="tfhers-enc-") as work:
        pk, pp, out = Path(work, "pk.bin"), Path(work, "crs.bin"), Path(work, "list.bin")
        pk.write_bytes(public_key)
        pp.write_bytes(crs)
        answer = _run_tool("encrypt", {"public_key": str(pk), "crs": str(pp), "digits": values,
                              "metadata": binding.to_bytes().hex(), "out": str(out), "prove": True,
                              "compute_load": compute_load},
                  dealer=binding.sender, round=binding.round)
        listing = out.read_bytes()
    LAST_ENCRYPTION_CPU_MS[0] = answer["cpu_ms"]
    return canonical_bytes(
        {"version": BLOB_VERSION, "binding": binding.as_dict(), "digits": len(values),
         "public_key_sha256": digest(public_key), "list": listing},
        name="owner_report",
    )


def encrypt_unproven_digits(public_key: bytes, digits: Sequence[int]) -> bytes:
    """A packed ``CompactCiphertextList`` without proof: the same encryption (same noise) as
    :func:`encrypt_report`, for the noise measurement only. Not accepted by :func:`verify_and_expand`."""
    values = list(digits)
    for i, d in enumerate(values):
        if type(d) is not int or not 0 <= d < DIGIT_LIMIT:
            raise ValueError(f"digits[{i}]: {d!r} is not an int in [0, {DIGIT_LIMIT})")
    with tempfile.TemporaryDirectory(prefix="tfhers-enc-") as work:
        pk, out = Path(work, "pk.bin"), Path(work, "list.bin")
        pk.write_bytes(public_key)
        _run_tool("encrypt", {"public_key": str(pk), "crs": str(pk), "digits": values, "metadata": "",
                              "out": str(out), "prove": False})
        return out.read_bytes()


def expand_unproven_digits(listing: bytes, digit_count: int) -> bytes:
    """The import buffer of an unproven list (noise measurement only)."""
    with tempfile.TemporaryDirectory(prefix="tfhers-exp-") as work:
        src, out = Path(work, "list.bin"), Path(work, "import.bin")
        src.write_bytes(listing)
        _run_tool("expand", {"list": str(src), "digits": digit_count, "out": str(out)})
        return out.read_bytes()


# --- evaluator / auditor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedReport:
    """A report whose proof verified: ``import_buffer`` is what ``bridge.import_value`` takes for a
    tfhers input of shape ``(digit_count,)`` of :func:`digit_type`."""

    binding: Binding
    digit_count: int
    blob_digest: str
    import_buffer: bytes = field(repr=False)
    verify_ms: int = field(compare=False, default=0)
    verify_cpu_ms: int = field(compare=False, default=0)


def verify_and_expand(
    blob: bytes,
    *,
    public_key: bytes,
    crs: bytes,
    expected: Binding,
    digit_count: int,
    max_bytes: int = MAX_BLOB_BYTES,
) -> VerifiedReport:
    """Evaluator/auditor: check a dealer's report blob against the binding *it* expects (metadata is
    recomputed from ``expected``, never read from the blob) and the published public key and CRS;
    verify the proof; return the import buffer. Raises :class:`OwnerReportError` naming the dealer,
    the round and the reason; nothing is computed on a rejected report."""
    dealer, rnd = expected.sender, expected.round

    def reject(reason: str, detail: str) -> OwnerReportError:
        return OwnerReportError(dealer, rnd, reason, detail)

    if not isinstance(blob, (bytes, bytearray)):
        raise reject("malformed", f"expected bytes, got {type(blob).__name__}")
    if len(blob) > max_bytes:
        raise reject("oversized", f"{len(blob)} bytes, limit {max_bytes}")
    try:
        data = canonical_loads(bytes(blob), name="owner_report")
    except EncodingError as error:
        reason = "truncated" if "truncated" in str(error) or "end of" in str(error) else "malformed"
        raise reject(reason, str(error)) from None
    names = {"version", "binding", "digits", "public_key_sha256", "list"}
    if not isinstance(data, dict) or set(data) != names:
        raise reject("malformed", f"expected exactly the fields {sorted(names)}")
    if data["version"] != BLOB_VERSION:
        raise reject("malformed", f"version {data['version']!r}, expected {BLOB_VERSION}")
    try:
        claimed = Binding.from_dict(data["binding"])
    except (TypeError, ValueError) as error:
        raise reject("malformed", f"binding: {error}") from None
    mismatches = [m.replace("envelope is bound to", "made for") for m in claimed.mismatches(expected)]
    if mismatches:
        raise reject("binding-mismatch", "; ".join(mismatches))
    if data["public_key_sha256"] != digest(public_key):
        raise reject("other-public-key", "encrypted for a public key other than the published one")
    if data["digits"] != digit_count:
        raise reject("wrong-digit-count", f"{data['digits']!r} digits, expected {digit_count}")
    if not isinstance(data["list"], bytes):
        raise reject("malformed", "list: not bytes")
    with tempfile.TemporaryDirectory(prefix="tfhers-ver-") as work:
        pk, pp, src, out = (Path(work, n) for n in ("pk.bin", "crs.bin", "list.bin", "import.bin"))
        pk.write_bytes(public_key)
        pp.write_bytes(crs)
        src.write_bytes(data["list"])
        answer = _run_tool(
            "verify",
            {"public_key": str(pk), "crs": str(pp), "list": str(src), "metadata": expected.to_bytes().hex(),
             "digits": digit_count, "out": str(out)},
            dealer=dealer, round=rnd,
        )
        buffer = out.read_bytes()
    return VerifiedReport(expected, digit_count, to_hex(digest(bytes(blob))), buffer, answer["ms"], answer["cpu_ms"])


def _phases(client_key: bytes, import_buffer: bytes) -> list[int]:
    """``b - <a, s> mod 2^64`` of every LWE in an import buffer, with the client key's GLWE key."""
    s = _glwe_coefficients(client_key).astype(np.uint64)
    count = int.from_bytes(import_buffer[:8], "little")
    phases, offset = [], 8
    for _ in range(count):
        blocks = int.from_bytes(import_buffer[offset : offset + 8], "little")
        size = int.from_bytes(import_buffer[offset + 8 : offset + 16], "little")
        if blocks != 1 or size != LWE_SIZE:
            raise CryptoError(f"import buffer: value at byte {offset} is not one {LWE_SIZE}-word LWE")
        lwe = np.frombuffer(import_buffer, dtype="<u8", count=LWE_SIZE, offset=offset + 16)
        with np.errstate(over="ignore"):
            phases.append(int(lwe[-1] - np.sum(lwe[:-1] * s, dtype=np.uint64)) % 2**64)
        offset += 16 + 8 * LWE_SIZE + _block_trailer(import_buffer, offset + 16 + 8 * LWE_SIZE)
    if offset != len(import_buffer):
        raise CryptoError(f"import buffer: {len(import_buffer) - offset} trailing bytes")
    return phases


def phase_errors(client_key: bytes, import_buffer: bytes, digits: Sequence[int]) -> list[int]:
    """The signed encryption noise of each LWE (phase minus ``digit * 2^58``, centred mod 2^64)."""
    return [((p - d * 2**58 + 2**63) % 2**64) - 2**63 for p, d in zip(_phases(client_key, import_buffer), digits)]


def decrypt_import_buffer(client_key: bytes, import_buffer: bytes) -> list[int]:
    """Custodian/tests: decrypt the packed values (0..31) of an import buffer with the client key's
    GLWE key, outside any circuit: ``round((b - <a, s>) / 2^58) mod 32``. Used to check a key file and
    the byte layout, and to measure the encryption noise before any bootstrap."""
    return [((p + 2**57) >> 58) % PLAINTEXT_LIMIT for p in _phases(client_key, import_buffer)]


_TRAILER = 68  # ciphertext modulus (u128 + u64), degree, noise level, message, carry (u64), pbs order (u32), tag (u64)


def _block_trailer(buffer: bytes, offset: int) -> int:
    """Length of the FheUint2 fields after its LWE data (measured layout of node-tfhe 0.10.0; the
    ciphertext-modulus words are checked so a changed layout fails loudly)."""
    fields = buffer[offset : offset + _TRAILER]
    if len(fields) != _TRAILER or fields[:16] != bytes(16) or int.from_bytes(fields[16:24], "little") != 64:
        raise CryptoError(f"import buffer: unexpected FheUint2 layout after byte {offset}")
    return _TRAILER
