"""Dealers encrypt their own reports under a published TFHE-rs compact public key; evaluators and the
auditor check the dealer's blob (and its input proof when the market has proofs on) before importing it
into a concrete-python circuit.

Why one module over 500 lines: every function here depends on the same pinned byte layouts (node-tfhe
0.10's client key and ciphertext lists, concrete 2.11's secret key and import buffer); keeping them side by
side keeps each layout check next to its use. The parameter records live in ``parameters.py``.

Who holds what
--------------
- The custodian generates a TFHE-rs client key with node-tfhe 0.10.0 (the tfhe-rs version embedded in
  concrete-python 2.11) and publishes the *compact public key*, and the *CRS* (the public parameters of the
  input proof) only when the market has proofs on, with their digests (:class:`OwnerKeyTerms`, for the terms
  on chain). The client key never leaves its folder (mode 0600). Concrete's keys are generated from the same
  GLWE secret key (:func:`inject_client_key`).
- A dealer seals its digits locally (:func:`seal_owner_report`): one LWE per 4-bit digit, pushed as a ``u4``
  (two 2-bit blocks packed into one LWE), unproven (``build_packed``, milliseconds) or with a proof of
  well-formedness bound to the metadata ``owner_report_binding(...).to_bytes()``.
- An evaluator or the auditor opens the blob (:func:`open_owner_report`): every structural check, and the
  proof when proofs are on, before anything is computed; it gets the buffer ``bridge.import_value`` takes.

Parameters: ``parameters.py`` (production: concrete's interoperability set with TUniform compact-public-key
noise; a TEST-ONLY set for the test suite's proofs). What the proof binds (tfhe-rs 0.10.0
``verify_and_expand``) [derived from its sources]: each LWE encrypts under *this* public key a plaintext in
[0, 32) (message + carry space, padding bit clear) with noise inside the TUniform bound, and the proof is
bound to the metadata bytes. It does *not* bind a digit to [0, 16): the circuit maps 16..31 to "invalid".
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from common.vocabulary import EVALUATORS, OWNER_REPORT
from crypto.encoding import canonical_bytes, canonical_loads, digest, from_hex, to_hex
from crypto.envelope import Binding
from crypto.errors import CryptoError, EncodingError
from crypto.identity import read_private_file, write_private_file, write_public_file
from crypto.tfhers.parameters import PRODUCTION_PARAMETERS, parameters_by_name, usable_parameters

if TYPE_CHECKING:
    from crypto.tfhers.parameters import TfheParameters

BLOB_VERSION = 2  # 2: the ``proven`` field (unproven lists are the default)
BLOB_FIELDS = frozenset({"version", "binding", "digits", "public_key_sha256", "proven", "list"})
DIGIT_BITS = 4  # one packed LWE = two 2-bit blocks = one base-16 digit  [decided]
DIGIT_LIMIT = 2**DIGIT_BITS
PLAINTEXT_LIMIT = 32  # what the proof bounds: message (4) x carry (8) space, padding bit clear
LWE_SIZE = PRODUCTION_PARAMETERS.lwe_size  # words per production LWE (mask + body), for callers crafting buffers
MAX_BLOB_BYTES = 4 * 1024 * 1024  # [decided] far above a report (bench_owner_encryption.json), checked before parsing
REJECTION_REASONS = (
    "oversized", "truncated", "malformed", "binding-mismatch", "other-public-key", "wrong-digit-count",
    "wrong-block-width", "wrong-parameters", "proof-rejected", "proof-missing", "unexpected-proof",
)
# The key folder's files; node/tfhe_tool.js keygen writes the first two under the same names.
CLIENT_KEY_FILE = "client_key.bin"
PUBLIC_KEY_FILE = "compact_public_key.bin"
CRS_FILE = "crs.bin"
MANIFEST_FILE = "manifest.json"
NODE_TIMEOUT_S = 900
CRS_TIMEOUT_S = 7200  # the production CRS takes tens of minutes in single-threaded WASM (bench_owner_encryption.py)

_TOOL = Path(__file__).resolve().parent / "node" / "tfhe_tool.js"
_ROOT = Path(__file__).resolve().parents[2]


# --- errors ---------------------------------------------------------------------------------------------


class OwnerReportError(CryptoError, ValueError):
    """A dealer's owner-encrypted report is rejected; ``reason`` is one of :data:`REJECTION_REASONS`. The
    message names the dealer, the round and the reason (public values only)."""

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


_CALLER_FIELDS = {"bad-public-key": "public_key", "bad-crs": "crs", "bad-request": "request"}


def _run_tool(
    command: str, request: dict[str, Any], parameters: TfheParameters, *, dealer: str = "", round: int = -1,
    timeout: float = NODE_TIMEOUT_S,
) -> dict[str, Any]:
    package = node_tfhe_dir()
    node = shutil.which("node")
    if package is None or node is None:
        raise NodeToolError("node-tfhe 0.10.0 not installed (run scripts/setup.sh) or node not on PATH")
    env = {"PATH": os.environ.get("PATH", ""), "REPO_MARKET_NODE_TFHE": str(package)}
    proc = subprocess.run(
        [node, str(_TOOL), command],
        input=json.dumps(request | {"parameters": parameters.tool_record()}).encode(),
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode in (3, 4) and out:
        answer = json.loads(out[-1])
        if proc.returncode == 3:  # the dealer's list
            raise OwnerReportError(dealer, round, answer["error"], answer["detail"][:300])
        name = _CALLER_FIELDS.get(answer["error"], answer["error"])
        raise ValueError(f"{name}: unusable with parameters {parameters.name!r} ({answer['detail'][:200]})")
    if proc.returncode != 0 or not out:
        tail = proc.stderr.decode(errors="replace")[-600:]
        raise NodeToolError(f"tfhe_tool {command} failed (exit {proc.returncode}): {tail}")
    return json.loads(out[-1])


# --- the concrete side ----------------------------------------------------------------------------------


def concrete_params_dict() -> dict[str, Any]:
    """The production TFHE-rs parameters as concrete's ``get_type_from_params_dict`` reads them."""
    return PRODUCTION_PARAMETERS.concrete_params_dict()


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
class OwnerKeyTerms:
    """What a market's terms fix about owner encryption (their digest goes on chain): the parameter set, the
    compact public key, and the CRS when input proofs are on (``None``: proofs off)."""

    parameters: str
    parameters_sha256: bytes
    public_key_sha256: bytes
    crs_sha256: bytes | None

    @property
    def input_proofs(self) -> bool:
        return self.crs_sha256 is not None

    def as_dict(self) -> dict[str, Any]:
        """Canonical-encodable form (digests as 32 raw bytes)."""
        return {"parameters": self.parameters, "parameters_sha256": self.parameters_sha256,
                "public_key_sha256": self.public_key_sha256, "crs_sha256": self.crs_sha256}


@dataclass(frozen=True)
class PublicKeyMaterial:
    """A market's owner-encryption key folder (:func:`generate_public_key_material`): paths and digests.
    Holds no key bytes (the repr shows the folder and the public digests only)."""

    folder: Path
    parameters: TfheParameters
    public_key_digest: str  # hex SHA-256 of compact_public_key.bin
    crs_digest: str | None  # hex SHA-256 of crs.bin; None: input proofs off
    sizes: dict[str, int] = field(compare=False, repr=False)
    times_ms: dict[str, int] = field(compare=False, repr=False)

    @property
    def client_key_path(self) -> Path:
        return self.folder / CLIENT_KEY_FILE

    @property
    def public_key_path(self) -> Path:
        return self.folder / PUBLIC_KEY_FILE

    @property
    def crs_path(self) -> Path | None:
        return self.folder / CRS_FILE if self.crs_digest is not None else None

    @property
    def input_proofs(self) -> bool:
        return self.crs_digest is not None

    def public_key_bytes(self) -> bytes:
        return self.public_key_path.read_bytes()

    def crs_bytes(self) -> bytes | None:
        return self.crs_path.read_bytes() if self.crs_path is not None else None

    @property
    def terms(self) -> OwnerKeyTerms:
        return OwnerKeyTerms(self.parameters.name, self.parameters.digest(), from_hex(self.public_key_digest),
                             None if self.crs_digest is None else from_hex(self.crs_digest))

    def __repr__(self) -> str:
        return (f"PublicKeyMaterial(folder={str(self.folder)!r}, parameters={self.parameters.name!r}, "
                f"public_key_digest={self.public_key_digest!r}, crs_digest={self.crs_digest!r})")


def generate_crs(parameters: TfheParameters = PRODUCTION_PARAMETERS) -> bytes:
    """The input-proof CRS for ``parameters`` (``proven_digit_limit`` digits per proof). It depends on the
    parameters only, not on any key; whoever generates it knows its trapdoor (docs/OWNER_ENCRYPTION.md §2).
    Slow for the production set (minutes, see the benchmark): once per deployment, kept in the custodian's
    folder by :func:`generate_public_key_material`."""
    parameters = usable_parameters(parameters)
    with tempfile.TemporaryDirectory(prefix="tfhers-crs-") as work:
        out = Path(work, CRS_FILE)
        _run_tool("crs", {"out": str(out)}, parameters, timeout=CRS_TIMEOUT_S)
        return out.read_bytes()


def generate_public_key_material(
    folder: Path, *, seed: int, crs: bytes | None = None, parameters: TfheParameters = PRODUCTION_PARAMETERS
) -> PublicKeyMaterial:
    """Custodian: a fresh client key (``client_key.bin``, 0600, in a 0700 folder), its compact public key
    (``compact_public_key.bin``), the CRS (``crs.bin``) only when ``crs`` is given (input proofs on; from
    :func:`generate_crs`), and ``manifest.json`` with the parameter set and the digests to publish.

    ``seed`` seeds the client key [decided: deterministic seeds, like the rest of the project's key
    generation]. Every argument is checked and every existing file refused before anything is written."""
    folder = Path(folder)
    parameters = usable_parameters(parameters)
    if type(seed) is not int or not 0 <= seed < 2**128:  # tfhe-rs seeds its key generator with a u128
        raise ValueError(f"seed: {seed!r} is not an int in [0, 2**128)")
    if crs is not None and (not isinstance(crs, bytes) or not crs):
        raise ValueError("crs: expected the CRS bytes from generate_crs, or None for a market without input proofs")
    for name in (CLIENT_KEY_FILE, PUBLIC_KEY_FILE, CRS_FILE, MANIFEST_FILE):
        if (folder / name).exists():
            raise FileExistsError(f"{folder / name}: exists; refusing to overwrite key material")
    with tempfile.TemporaryDirectory(prefix="tfhers-keygen-") as work:
        os.chmod(work, 0o700)
        request = {"folder": work, "seed": str(seed)}
        if crs is not None:  # checked to be a CRS: a placeholder would otherwise turn proofs on
            Path(work, CRS_FILE).write_bytes(crs)
            request["crs"] = str(Path(work, CRS_FILE))
        answer = _run_tool("keygen", request, parameters, timeout=CRS_TIMEOUT_S)
        client_key = Path(work, CLIENT_KEY_FILE).read_bytes()
        public_key = Path(work, PUBLIC_KEY_FILE).read_bytes()
    _glwe_coefficients(client_key, parameters)  # refuse a layout we do not understand before writing anything
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    write_private_file(folder / CLIENT_KEY_FILE, client_key)
    write_public_file(folder / PUBLIC_KEY_FILE, public_key)
    if crs is not None:
        write_public_file(folder / CRS_FILE, crs)
    material = PublicKeyMaterial(
        folder=folder,
        parameters=parameters,
        public_key_digest=to_hex(digest(public_key)),
        crs_digest=None if crs is None else to_hex(digest(crs)),
        sizes={"client_key": len(client_key), "public_key": len(public_key), "crs": len(crs or b"")},
        times_ms=answer["times"],
    )
    manifest = {
        "node_tfhe": "0.10.0",
        "parameters": parameters.name,
        "parameters_sha256": to_hex(parameters.digest()),
        "digit_bits": DIGIT_BITS,
        "public_key_sha256": material.public_key_digest,
        "crs_sha256": material.crs_digest,
    }
    write_public_file(folder / MANIFEST_FILE, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return material


def load_public_key_material(folder: Path) -> PublicKeyMaterial:
    """A key folder written by :func:`generate_public_key_material`, its files checked against the manifest's
    digests (a TEST-ONLY folder is refused without the test flag)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        parameters = parameters_by_name(manifest["parameters"])
        if manifest["parameters_sha256"] != to_hex(parameters.digest()):
            raise ValueError(f"parameters: {parameters.name!r} differs from the record this folder was made with")
        public_key_digest, crs_digest = manifest["public_key_sha256"], manifest["crs_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CryptoError(f"{folder / MANIFEST_FILE}: {error}") from None
    checks = [(PUBLIC_KEY_FILE, public_key_digest)] + ([(CRS_FILE, crs_digest)] if crs_digest is not None else [])
    for name, expected in checks:
        path = folder / name
        if not path.is_file() or to_hex(digest(path.read_bytes())) != expected:
            raise CryptoError(f"{path}: missing or not the file the manifest's digest names")
    return PublicKeyMaterial(folder, parameters, public_key_digest, crs_digest, sizes={}, times_ms={})


def _glwe_coefficients(client_key: bytes, parameters: TfheParameters = PRODUCTION_PARAMETERS) -> np.ndarray:
    """The GLWE secret key of a node-tfhe 0.10 ``TfheClientKey.serialize()`` (bincode): a u64 length
    (the encryption dimension) at offset 0, then that many u64 coefficients in {0, 1}. A byte-layout
    dependency: checked."""
    size = parameters.encryption_dimension
    if len(client_key) < 8 + 8 * size:
        raise CryptoError(f"client key: too short for a {size}-coefficient GLWE key")
    n = int.from_bytes(client_key[:8], "little")
    if n != size:
        raise CryptoError(f"client key: GLWE key length {n} at offset 0, expected {size}")
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
    """What a dealer's report is bound to: its bytes are the proof's metadata when proofs are on."""
    return Binding(OWNER_REPORT, chain_id, contract, round, dealer_role, EVALUATORS)


def _digit_limit(parameters: TfheParameters, proven: bool) -> int:
    return parameters.proven_digit_limit if proven else parameters.unproven_digit_limit


def _check_digits(digits: Sequence[int], limit: int) -> list[int]:
    values = list(digits)
    if not 1 <= len(values) <= limit:
        raise ValueError(f"digits: {len(values)} digits, expected 1..{limit}")
    for i, d in enumerate(values):
        if type(d) is not int or not 0 <= d < DIGIT_LIMIT:
            raise ValueError(f"digits[{i}]: {d!r} is not an int in [0, {DIGIT_LIMIT})")
    return values


def _check_key_bytes(public_key: Any, crs: Any) -> None:
    if not isinstance(public_key, bytes) or not public_key:
        raise ValueError("public_key: expected the market's compact public key bytes")
    if crs is not None and (not isinstance(crs, bytes) or not crs):
        raise ValueError("crs: expected the market's CRS bytes, or None for a market without input proofs")


def _encrypt_list(public_key: bytes, values: list[int], parameters: TfheParameters, crs: bytes | None,
                  metadata: bytes, compute_load: str = "proof") -> bytes:
    """The one place a list is made: packed, one LWE per digit; proven for ``metadata`` when ``crs`` is given."""
    with tempfile.TemporaryDirectory(prefix="tfhers-enc-") as work:
        pk, pp, out = Path(work, "pk.bin"), Path(work, "crs.bin"), Path(work, "list.bin")
        pk.write_bytes(public_key)
        if crs is not None:
            pp.write_bytes(crs)
        _run_tool("encrypt", {"public_key": str(pk), "crs": str(pp), "digits": values, "metadata": metadata.hex(),
                              "out": str(out), "prove": crs is not None, "compute_load": compute_load}, parameters)
        return out.read_bytes()


def seal_owner_report(
    public_key: bytes,
    digits: Sequence[int],
    binding: Binding,
    *,
    crs: bytes | None = None,
    parameters: TfheParameters = PRODUCTION_PARAMETERS,
    compute_load: str = "proof",
) -> bytes:
    """Dealer: the report blob ``canonical_bytes({version, binding, digits, public_key_sha256, proven,
    list})``. ``crs`` None (markets without input proofs): ``list`` is an unproven packed
    ``CompactCiphertextList`` (milliseconds); ``crs`` given: a ``ProvenCompactCiphertextList`` whose proof is
    bound to ``binding.to_bytes()`` (tens of seconds for the production set, see the benchmark).
    ``compute_load``: tfhe-rs's ``ZkComputeLoad``; markets accept only ``"proof"`` (a ``"verify"`` proof puts
    the prover's work on every verifier; the benchmark measures it). Everything is checked before anything is
    encrypted."""
    parameters = usable_parameters(parameters)
    _check_key_bytes(public_key, crs)
    values = _check_digits(digits, _digit_limit(parameters, crs is not None))
    if not isinstance(binding, Binding) or binding.purpose != OWNER_REPORT:
        raise ValueError(f"binding: {binding!r} is not an owner-report binding (owner_report_binding)")
    if compute_load not in ("proof", "verify"):
        raise ValueError(f"compute_load: {compute_load!r}, expected 'proof' or 'verify'")
    listing = _encrypt_list(public_key, values, parameters, crs, binding.to_bytes(), compute_load)
    return canonical_bytes(
        {"version": BLOB_VERSION, "binding": binding.as_dict(), "digits": len(values),
         "public_key_sha256": digest(public_key), "proven": crs is not None, "list": listing},
        name="owner_report",
    )


def encrypt_unproven_digits(public_key: bytes, digits: Sequence[int], *,
                            parameters: TfheParameters = PRODUCTION_PARAMETERS) -> bytes:
    """A bare unproven packed list (no blob header): the list :func:`seal_owner_report` puts in an unproven
    blob, for measurements and for crafting test inputs."""
    parameters = usable_parameters(parameters)
    _check_key_bytes(public_key, None)
    return _encrypt_list(public_key, _check_digits(digits, parameters.unproven_digit_limit), parameters, None, b"")


# --- evaluator / auditor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedReport:
    """A report that passed :func:`open_owner_report`: ``import_buffer`` is what ``bridge.import_value`` takes
    for a tfhers input of shape ``(digit_count,)`` of :func:`digit_type`."""

    binding: Binding
    digit_count: int
    blob_digest: str  # hex SHA-256 of the blob as published
    proven: bool
    import_buffer: bytes = field(repr=False)
    verify_ms: int = field(compare=False, default=0)
    verify_cpu_ms: int = field(compare=False, default=0)


def _expand_list(listing: bytes, digit_count: int, parameters: TfheParameters, *, public_key: bytes | None = None,
                 crs: bytes | None = None, metadata: bytes = b"", dealer: str = "", round: int = -1,
                 accept_verify_load: bool = False) -> tuple[bytes, dict[str, Any]]:
    """The one place a list is checked and expanded: field by field (node tool), the proof when ``crs`` is
    given; returns the import buffer and the tool's answer (timings). ``accept_verify_load``: only for the
    benchmark's measurement of ``ZkComputeLoad.Verify`` proofs, which markets refuse (§3 of the doc)."""
    with tempfile.TemporaryDirectory(prefix="tfhers-open-") as work:
        pk, pp, src, out = (Path(work, n) for n in ("pk.bin", "crs.bin", "list.bin", "import.bin"))
        src.write_bytes(listing)
        request = {"list": str(src), "digits": digit_count, "out": str(out)}
        if crs is None:
            answer = _run_tool("expand", request, parameters, dealer=dealer, round=round)
        else:
            pk.write_bytes(public_key or b"")
            pp.write_bytes(crs)
            answer = _run_tool("verify", request | {"public_key": str(pk), "crs": str(pp), "metadata": metadata.hex(),
                                                    "accept_verify_load": accept_verify_load},
                               parameters, dealer=dealer, round=round, timeout=CRS_TIMEOUT_S)
        return out.read_bytes(), answer


def expand_unproven_digits(listing: bytes, digit_count: int, *,
                           parameters: TfheParameters = PRODUCTION_PARAMETERS) -> bytes:
    """The import buffer of a bare unproven list (:func:`encrypt_unproven_digits`), after the same list checks
    :func:`open_owner_report` makes."""
    parameters = usable_parameters(parameters)
    return _expand_list(listing, digit_count, parameters)[0]


def open_owner_report(
    blob: bytes,
    *,
    public_key: bytes,
    expected: Binding,
    digit_count: int,
    crs: bytes | None = None,
    parameters: TfheParameters = PRODUCTION_PARAMETERS,
    max_bytes: int = MAX_BLOB_BYTES,
) -> VerifiedReport:
    """Evaluator/auditor: check a dealer's blob against what *it* expects — the binding (the proof's metadata
    is recomputed from ``expected``, never read from the blob), the published public key, the terms' digit
    count, and the CRS when the market has input proofs on (``crs`` given: an unproven blob is refused;
    ``crs`` None: a proven one is) — and return the import buffer. A rejected blob raises
    :class:`OwnerReportError` naming the dealer, the round and the reason, before anything is computed; the
    verifier's own arguments raise ValueError."""
    parameters = usable_parameters(parameters)
    _check_key_bytes(public_key, crs)
    if not isinstance(expected, Binding) or expected.purpose != OWNER_REPORT:
        raise ValueError(f"expected: {expected!r} is not an owner-report binding (owner_report_binding)")
    proofs_on = crs is not None
    limit = _digit_limit(parameters, proofs_on)
    if type(digit_count) is not int or not 1 <= digit_count <= limit:
        raise ValueError(f"digit_count: {digit_count!r} is not an int in [1, {limit}]")
    dealer, rnd = expected.sender, expected.round

    def reject(reason: str, detail: str) -> OwnerReportError:
        return OwnerReportError(dealer, rnd, reason, detail)

    if not isinstance(blob, (bytes, bytearray)):
        raise reject("malformed", f"expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) > max_bytes:
        raise reject("oversized", f"{len(blob)} bytes, limit {max_bytes}")
    try:
        data = canonical_loads(blob, name="owner_report")
    except EncodingError as error:
        reason = "truncated" if "truncated" in str(error) or "end of" in str(error) else "malformed"
        raise reject(reason, str(error)) from None
    if not isinstance(data, dict) or set(data) != BLOB_FIELDS:
        raise reject("malformed", f"expected exactly the fields {sorted(BLOB_FIELDS)}")
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
    if type(data["proven"]) is not bool:
        raise reject("malformed", f"proven: {data['proven']!r} is not a bool")
    if proofs_on and not data["proven"]:
        raise reject("proof-missing", "the market requires input proofs; this list has none")
    if not proofs_on and data["proven"]:
        raise reject("unexpected-proof", "the market runs without input proofs; this list carries one")
    if not isinstance(data["list"], bytes):
        raise reject("malformed", "list: not bytes")
    buffer, answer = _expand_list(data["list"], digit_count, parameters, public_key=public_key, crs=crs,
                                  metadata=expected.to_bytes(), dealer=dealer, round=rnd)
    return VerifiedReport(expected, digit_count, to_hex(digest(blob)), proofs_on, buffer,
                          answer.get("ms", 0), answer.get("cpu_ms", 0))


# --- decryption outside a circuit (custodian checks, tests, noise measurement) ---------------------------


_TRAILER = 68  # ciphertext modulus (u128 + u64), degree, noise level, message, carry (u64), pbs order (u32), tag (u64)


def _phases(client_key: bytes, import_buffer: bytes, parameters: TfheParameters) -> list[int]:
    """``b - <a, s> mod 2^64`` of every LWE in an import buffer, with the client key's GLWE key."""
    s = _glwe_coefficients(client_key, parameters).astype(np.uint64)
    lwe_size = parameters.lwe_size
    count = int.from_bytes(import_buffer[:8], "little")
    phases, offset = [], 8
    for _ in range(count):
        blocks = int.from_bytes(import_buffer[offset : offset + 8], "little")
        size = int.from_bytes(import_buffer[offset + 8 : offset + 16], "little")
        if blocks != 1 or size != lwe_size:
            raise CryptoError(f"import buffer: value at byte {offset} is not one {lwe_size}-word LWE")
        lwe = np.frombuffer(import_buffer, dtype="<u8", count=lwe_size, offset=offset + 16)
        with np.errstate(over="ignore"):
            phases.append(int(lwe[-1] - np.sum(lwe[:-1] * s, dtype=np.uint64)) % 2**64)
        offset += 16 + 8 * lwe_size + _block_trailer(import_buffer, offset + 16 + 8 * lwe_size)
    if offset != len(import_buffer):
        raise CryptoError(f"import buffer: {len(import_buffer) - offset} trailing bytes")
    return phases


def phase_errors(client_key: bytes, import_buffer: bytes, digits: Sequence[int], *,
                 parameters: TfheParameters = PRODUCTION_PARAMETERS) -> list[int]:
    """The signed encryption noise of each LWE (phase minus ``digit * 2^58``, centred mod 2^64)."""
    return [((p - d * 2**58 + 2**63) % 2**64) - 2**63
            for p, d in zip(_phases(client_key, import_buffer, parameters), digits)]


def decrypt_phases(client_key: bytes, import_buffer: bytes, *,
                   parameters: TfheParameters = PRODUCTION_PARAMETERS) -> list[int]:
    """The 6-bit plaintexts (padding bit included, 0..63) of an import buffer: an honest digit is 0..15, a
    list under another key gives values spread over the whole range (which the circuit flags as invalid)."""
    return [((p + 2**57) >> 58) % 64 for p in _phases(client_key, import_buffer, parameters)]


def decrypt_import_buffer(client_key: bytes, import_buffer: bytes, *,
                          parameters: TfheParameters = PRODUCTION_PARAMETERS) -> list[int]:
    """Custodian/tests: decrypt the packed values (0..31) of an import buffer with the client key's
    GLWE key, outside any circuit: ``round((b - <a, s>) / 2^58) mod 32``. Used to check a key file and
    the byte layout, and to measure the encryption noise before any bootstrap."""
    return [v % PLAINTEXT_LIMIT for v in decrypt_phases(client_key, import_buffer, parameters=parameters)]


def _block_trailer(buffer: bytes, offset: int) -> int:
    """Length of the FheUint2 fields after its LWE data (measured layout of node-tfhe 0.10.0; the
    ciphertext-modulus words are checked so a changed layout fails loudly)."""
    fields = buffer[offset : offset + _TRAILER]
    if len(fields) != _TRAILER or fields[:16] != bytes(16) or int.from_bytes(fields[16:24], "little") != 64:
        raise CryptoError(f"import buffer: unexpected FheUint2 layout after byte {offset}")
    return _TRAILER
