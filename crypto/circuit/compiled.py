"""The compiled circuit: compile and cache, self-checking public blobs, evaluation, simulation, cost report."""
from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.vocabulary import SIDES, Side
from crypto.circuit.gadgets import _fhe
from crypto.circuit.radix import STEPS, _radix
from crypto.circuit.report import SelectionOutput, build_inputset, report_digits
from crypto.circuit.shape import (
    ARTIFACT_NAME,
    RULE_VERSION,
    TLU_BITS,
    CircuitError,
    CircuitShape,
    circuit_cache_key,
)
from crypto.encoding import digest, to_hex
from crypto.fhe_runtime import require_fixed_plan
from crypto.tfhers import digit_type, to_native_digits
from crypto.tfhers.owner_encryption import _TRAILER, LWE_SIZE, CryptoError, _block_trailer
from market.terms import MarketTerms

BLOB_MAGIC = b"RMFHE1"


def wrap_blob(kind: str, payload: bytes) -> bytes:
    """``magic ‖ kind(16) ‖ SHA-256(payload) ‖ payload``: a blob that checks itself before deserializing."""
    tag = kind.encode().ljust(16, b"\0")
    return BLOB_MAGIC + tag + digest(payload) + payload


def unwrap_blob(kind: str, blob: bytes, *, expected_digest: bytes | None = None) -> bytes:
    """Check the blob (and optionally its published SHA-256) before any native deserializer sees it."""
    if not isinstance(blob, (bytes, bytearray)):
        raise CircuitError(f"{kind}: expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if expected_digest is not None and digest(blob) != expected_digest:
        raise CircuitError(
            f"{kind}: SHA-256 {to_hex(digest(blob))[:16]}… differs from the published {to_hex(expected_digest)[:16]}…"
        )
    head = len(BLOB_MAGIC) + 16 + 32
    if len(blob) < head or not blob.startswith(BLOB_MAGIC):
        raise CircuitError(f"{kind}: not a repo-market FHE blob ({len(blob)} bytes, bad header)")
    tag = blob[len(BLOB_MAGIC) : len(BLOB_MAGIC) + 16].rstrip(b"\0").decode(errors="replace")
    if tag != kind:
        raise CircuitError(f"{kind}: blob holds a {tag!r}, not a {kind!r}")
    payload = blob[head:]
    if digest(payload) != blob[len(BLOB_MAGIC) + 16 : head]:
        raise CircuitError(f"{kind}: payload does not match its embedded SHA-256 (truncated or corrupt)")
    return payload


CONFIGURATION_LEVERS: dict = {}  # extra fhe.Configuration options (the benchmark records each lever it tries)


def _configuration(strategy: str = "multi", simulation: bool = False):
    fhe = _fhe()
    # multi parameters: concrete refuses tfhers inputs under mono (docs/OWNER_ENCRYPTION.md §1). Parallel loops
    # stay on. TLU fusing stays on: the import's first table feeds two lookups, so it cannot be fused (checked
    # in tests/crypto/test_circuit_parity.py on the compiled graph).
    # Compressed evaluation keys [measured, bench_fhe.json "owner_vs_mono"]: the multi keys shrink to about
    # today's mono size at no measurable evaluation cost (a lever may override it).
    return fhe.Configuration(
        **({"parameter_selection_strategy": strategy, "show_progress": False, "fhe_simulation": simulation,
            "fhe_execution": not simulation, "compress_evaluation_keys": True} | CONFIGURATION_LEVERS),
    )


@dataclass
class CostReport:
    """Static costs of a compiled circuit plus the timings a caller measured (seconds)."""

    grid: int
    rate_bits: int
    hurdle_bits: int
    hurdle_mode: str
    formulation: str
    strategy: str
    pbs_count: int
    tlu_bits: int
    joint_bits: int
    max_integer_bits: int | None
    bootstrap_key_bytes: int
    keyswitch_key_bytes: int
    input_ciphertext_bytes: int
    output_ciphertext_bytes: int
    global_p_error: float
    complexity: float
    artifact_bytes: int
    pbs_per_tag: dict = field(default_factory=dict)  # PBS per step of the rule (its fhe.tag, radix.STEPS)
    timings: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    peak_rss_bytes: int | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["peak_rss_bytes"] = peak_rss_bytes()
        return out


def graph_fingerprint(compiled) -> dict:
    """What a change that must leave the circuit unchanged keeps: PBS count (total, per tag), SHA-256 of
    ``graph.format()`` with and without the tag annotations and of the MLIR, the widest integer.
    [measured] concrete names the tfhers inputs' key partition ``tfhers_<random>`` anew at every compile
    (``randint`` in its MLIR context): the MLIR is hashed with that name replaced by a fixed one."""
    mlir = re.sub(r"\btfhers_[0-9]+\b", "tfhers_partition", compiled.mlir)
    out = {"pbs_count": int(compiled.programmable_bootstrap_count),
           "graph_sha256": hashlib.sha256(compiled.graph.format().encode()).hexdigest(),
           "graph_sha256_without_tags": hashlib.sha256(compiled.graph.format(show_tags=False).encode()).hexdigest(),
           "mlir_sha256": hashlib.sha256(mlir.encode()).hexdigest(),
           "max_integer_bits": int(compiled.graph.maximum_integer_bit_width())}
    per_tag = _in_step_order(compiled.programmable_bootstrap_count_per_tag)
    if per_tag:
        out["pbs_per_tag"] = per_tag
    return out


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class SelectionCircuit:
    """The compiled selection circuit of one set of market terms.

    The server artifact (``server.zip``) is cached under ``cache_dir/<terms digest hex>/``; it is a public
    blob: with the evaluation keys and two input ciphertexts anyone can :meth:`evaluate` (and replay).
    """

    def __init__(self, terms: MarketTerms, shape: CircuitShape, artifact_path: Path | None, *, compiled=None,
                 compile_seconds: float | None = None):
        self.terms = terms
        self.shape = shape
        self.artifact_path = Path(artifact_path) if artifact_path is not None else None
        self.artifact_bytes = self.artifact_path.read_bytes() if artifact_path is not None else b""
        self.artifact_digest = digest(self.artifact_bytes) if artifact_path is not None else b""
        self.compile_seconds = compile_seconds
        self._compiled = compiled
        self._simulator = None
        self._server = None
        self._bridge = None

    def __repr__(self) -> str:
        return (
            f"SelectionCircuit(N={self.shape.grid}, rate_bits={self.shape.rate_bits}, "
            f"mode={self.terms.hurdle_mode.value}, formulation={self.shape.formulation}, "
            f"artifact={to_hex(self.artifact_digest)[:16] or 'none'}…)"
        )

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def for_terms(cls, terms: MarketTerms, cache_dir: Path, *, strategy: str = "multi") -> "SelectionCircuit":
        """Load the cached server artifact of ``terms`` or compile it (once per terms) and cache it."""
        shape = CircuitShape.from_terms(terms, strategy)
        folder = Path(cache_dir) / to_hex(circuit_cache_key(terms, strategy))
        artifact = folder / ARTIFACT_NAME
        if artifact.is_file():
            return cls(terms, shape, artifact)
        started = time.perf_counter()
        compiled = _compile(shape, simulation=False)
        seconds = time.perf_counter() - started
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            staged = Path(tmp) / ARTIFACT_NAME
            compiled.server.save(staged)
            (Path(tmp) / "terms.json").write_text(
                json.dumps(terms.as_dict() | {"formulation": shape.formulation, "parameter_strategy": strategy,
                                              "rule": RULE_VERSION})
            )
            os.replace(Path(tmp) / "terms.json", folder / "terms.json")
            os.replace(staged, artifact)  # atomic: a concurrent reader sees the whole artifact or none
        return cls(terms, shape, artifact, compiled=compiled, compile_seconds=seconds)

    @classmethod
    def simulation_only(cls, terms: MarketTerms) -> "SelectionCircuit":
        """A circuit that can only :meth:`simulate` (no FHE artifact is compiled): for wide parity sweeps."""
        return cls(terms, CircuitShape.from_terms(terms), None)

    @property
    def server(self):
        if self.artifact_path is None:
            raise CircuitError("this SelectionCircuit was built with simulation_only(): no FHE artifact")
        if self._server is None:
            self._server = _fhe().Server.load(self.artifact_path)
        return self._server

    @property
    def client_specs(self):
        return self.server.client_specs

    @property
    def function_name(self) -> str:
        return self.server.program_info.get_circuits()[0].get_name()

    # evaluator side ----------------------------------------------------------------------------------------

    @property
    def bridge(self):
        """concrete's tfhers bridge on this circuit's client specs (imports need no key)."""
        if self._bridge is None:
            fhe = _fhe()
            from concrete.fhe import tfhers

            self._bridge = tfhers.new_bridge(fhe.Client(self.client_specs))
        return self._bridge

    def import_digits(self, side: str, import_buffer: bytes):
        """One dealer's import buffer (``crypto.tfhers`` expand / verify_and_expand) as the circuit's input
        ``0`` (mm) or ``1`` (rm); a buffer concrete cannot read is a :class:`CircuitError`."""
        index = Side.of(side).index
        if not isinstance(import_buffer, (bytes, bytearray)):
            raise CircuitError(f"import_{side}: expected bytes, got {type(import_buffer).__name__}")
        problem = import_buffer_problem(bytes(import_buffer), self.shape.digit_count)
        if problem:  # concrete's native import aborts the whole process on a malformed buffer
            raise CircuitError(f"import_{side}: not {self.shape.digit_count} TFHE-rs digits this circuit imports "
                               f"({problem})")
        try:
            return self.bridge.import_value(bytes(import_buffer), index)
        except Exception as error:  # concrete raises RuntimeError with a native message
            raise CircuitError(f"import_{side}: not {self.shape.digit_count} TFHE-rs digits this circuit imports "
                               f"({type(error).__name__}: {str(error)[:120]})") from None

    def evaluate(self, evaluation_keys: bytes, import_mm: bytes, import_rm: bytes, *,
                 digests: dict | None = None) -> bytes:
        """Run the circuit on public data only: evaluation keys + each dealer's import buffer -> output blob.

        The evaluation keys blob is hash-checked (embedded SHA-256, and ``digests["evaluation_keys"]`` when
        given); ``digests["mm"]`` / ``["rm"]``, when given, must be the SHA-256 of the import buffers. Any input
        phase runs: a digit out of range, a set padding bit, noise, another key's ciphertexts all end in that
        dealer's invalid flag (docs/CIRCUIT.md). Byte-identical in every process: it refuses to run unless the
        fixed FFT plan is loaded (:mod:`crypto.fhe_runtime`).
        """
        require_fixed_plan()  # an output under a timed FFT plan could not be replayed byte for byte elsewhere
        fhe = _fhe()
        digests = digests or {}
        keys = unwrap_blob("evaluation_keys", evaluation_keys, expected_digest=digests.get("evaluation_keys"))
        for side, buffer in zip(SIDES, (import_mm, import_rm)):
            if digests.get(side) is not None and digest(bytes(buffer)) != digests[side]:
                raise CircuitError(f"import_{side}: SHA-256 {to_hex(digest(bytes(buffer)))[:16]}… differs from the "
                                   f"published {to_hex(digests[side])[:16]}…")
        values = (self.import_digits(Side.MM, import_mm), self.import_digits(Side.RM, import_rm))
        result = self.server.run(*values, evaluation_keys=fhe.EvaluationKeys.deserialize(keys))
        return wrap_blob("ciphertext_out", result.serialize())

    # simulation (no encryption) ------------------------------------------------------------------------------

    def simulate(self, mm_offsets, h_mm, rm_offsets, h_rm) -> SelectionOutput:
        """The same rule without encryption (milliseconds): for wide parity tests."""
        mm = report_digits(self.shape, Side.MM, mm_offsets, h_mm)
        rm = report_digits(self.shape, Side.RM, rm_offsets, h_rm)
        return SelectionOutput.from_values(self.simulate_digits(mm, rm))

    def simulate_digits(self, digits_mm, digits_rm) -> np.ndarray:
        """The raw output rows of the rule body traced on native digits (the body the FHE circuit runs after
        importing the dealers' digits), on any digits in ``[0, 32)`` -- a dealer's own, or crafted ones."""
        values = []
        for side, digits in zip(SIDES, (digits_mm, digits_rm)):
            row = np.asarray(digits, dtype=np.int64).reshape(-1)
            if row.size != self.shape.digit_count:
                raise CircuitError(f"digits_{side}: {row.size} digits, the circuit takes {self.shape.digit_count}")
            values.append(row)
        if self._simulator is None:
            self._simulator = _compile(self.shape, simulation=True)
        return np.asarray(self._simulator.simulate(*values))

    def simulate_packed(self, mm: np.ndarray, rm: np.ndarray) -> np.ndarray:
        """:meth:`simulate_digits` (the simulate backend's name for it)."""
        return self.simulate_digits(mm, rm)

    def with_simulation_cache(self, cache_dir: Path) -> "SelectionCircuit":
        """Simulate with the simulation-mode server cached in ``cache_dir`` (next to the FHE artifact, under the
        same key), compiling and saving it the first time: a command that simulates the same terms again then
        loads it in seconds instead of compiling again (a minute at N = 64; bench-results/bench_simulate.json)."""
        if self._simulator is None:
            self._simulator = cached_simulator(self.terms, self.shape, Path(cache_dir))
        return self

    # cost report ----------------------------------------------------------------------------------------------

    def cost_report(self) -> CostReport:
        """Static costs from the artifact (PBS count, key and ciphertext sizes, p_error, complexity)."""
        server = self.server
        name = self.function_name
        compiled = self._compiled
        return CostReport(
            grid=self.shape.grid,
            rate_bits=self.shape.rate_bits,
            hurdle_bits=self.shape.hurdle_bits,
            hurdle_mode=self.terms.hurdle_mode.value,
            formulation=self.shape.formulation,
            strategy=self.shape.strategy,
            pbs_count=int(server.programmable_bootstrap_count(name)),
            tlu_bits=TLU_BITS,
            joint_bits=self.shape.joint_bits,
            max_integer_bits=int(compiled.graph.maximum_integer_bit_width()) if compiled is not None else None,
            bootstrap_key_bytes=int(server.size_of_bootstrap_keys),
            keyswitch_key_bytes=int(server.size_of_keyswitch_keys),
            input_ciphertext_bytes=int(server.size_of_inputs(name)),
            output_ciphertext_bytes=int(server.size_of_outputs(name)),
            global_p_error=float(server.global_p_error),
            complexity=float(server.complexity),
            artifact_bytes=len(self.artifact_bytes),
            pbs_per_tag=_in_step_order(server.programmable_bootstrap_count_per_tag(name)),
            timings={"compile": self.compile_seconds} if self.compile_seconds is not None else {},
        )


SIMULATOR_NAME = "simulator.zip"  # a simulation-mode server, next to the FHE artifact (ARTIFACT_NAME)


class _LoadedSimulator:
    """A simulation-mode server loaded from the cache, with the compiled circuit's ``simulate(mm, rm)``."""

    def __init__(self, server):
        self.server = server
        self.client = _fhe().Client(server.client_specs, is_simulated=True)
        self.name = server.program_info.get_circuits()[0].get_name()

    def simulate(self, mm, rm):
        args = self.client.simulate_encrypt(mm, rm, function_name=self.name)
        return self.client.simulate_decrypt(self.server.run(*args, function_name=self.name), function_name=self.name)


def cached_simulator(terms: MarketTerms, shape: CircuitShape, cache_dir: Path):
    """The simulator of ``terms``: loaded from ``cache_dir/<key>/simulator.zip``, else compiled and saved there
    (atomically; a file that does not load is compiled again and replaced)."""
    folder = Path(cache_dir) / to_hex(circuit_cache_key(terms, shape.strategy))
    path = folder / SIMULATOR_NAME
    if path.is_file():
        try:
            return _LoadedSimulator(_fhe().Server.load(path))
        except Exception:  # noqa: BLE001 -- a cache only: a damaged file is rebuilt below
            pass
    compiled = _compile(shape, simulation=True)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp) / SIMULATOR_NAME
        # concrete 2.11 has no public handle on a simulation-only circuit's server
        compiled._module.simulation_runtime.val.server.save(staged)  # noqa: SLF001
        os.replace(staged, path)
    return compiled


def import_buffer_problem(buffer: bytes, count: int) -> str | None:
    """Why ``buffer`` is not ``count`` one-block TFHE-rs digits in the layout concrete's import reads
    (docs/OWNER_ENCRYPTION.md §5-§6: u64 count, then per digit u64 blocks = 1, u64 LWE size, the LWE words, the
    FheUint2 fields), or ``None``. Only the structure: the LWE words may hold anything (the circuit handles any
    phase)."""
    value = 16 + 8 * LWE_SIZE + _TRAILER
    if len(buffer) != 8 + count * value:
        return f"{len(buffer)} bytes, expected {8 + count * value}"
    if int.from_bytes(buffer[:8], "little") != count:
        return f"holds {int.from_bytes(buffer[:8], 'little')} values"
    for k in range(count):
        offset = 8 + k * value
        blocks = int.from_bytes(buffer[offset : offset + 8], "little")
        size = int.from_bytes(buffer[offset + 8 : offset + 16], "little")
        if (blocks, size) != (1, LWE_SIZE):
            return f"value {k}: {blocks} blocks of LWE size {size}"
        try:
            _block_trailer(buffer, offset + 16 + 8 * LWE_SIZE)
        except CryptoError as error:
            return f"value {k}: {error}"
    return None


def _in_step_order(per_tag: dict) -> dict:
    """concrete's PBS count per tag, keyed in the rule's order (:data:`~crypto.circuit.radix.STEPS`)."""
    return {tag: int(per_tag[tag]) for tag in STEPS if tag in per_tag} | {
        tag: int(count) for tag, count in per_tag.items() if tag not in STEPS}


SIMULATION_SAMPLES = 0  # random samples of the simulation's inputset (the structured extremes are always in it)


def _compile(shape: CircuitShape, *, simulation: bool):
    """The FHE circuit (one tfhers input per dealer, ``digit_type()``, the rule behind ``to_native``) or, for
    simulation, the same rule body on native 5-bit digits (concrete simulates tfhers inputs only in [0, 3])."""
    fhe = _fhe()
    rule = _radix(shape)
    count = shape.digit_count
    if simulation:
        honest = [(np.array(report_digits(shape, Side.MM, mm[:-1], int(mm[-1]))),
                   np.array(report_digits(shape, Side.RM, rm[:-1], int(rm[-1]))))
                  for mm, rm in build_inputset(shape, samples=SIMULATION_SAMPLES)]
        # every lookup input is hinted to its proven bound (_tlu_in), so the structured extremes suffice (the
        # same MLIR as 60 random samples: tests/crypto/test_simulation_cache.py; measuring bounds on each sample
        # is most of a simulation's compile); 0 and 31 give the inputs their 5-bit width (any digit a dealer
        # can encrypt)
        extremes = [(np.full(count, v), np.full(count, w)) for v in (0, 31) for w in (0, 31)]
        compiler = fhe.Compiler(rule, {"mm": "encrypted", "rm": "encrypted"})
        return compiler.compile(honest + extremes, _configuration(shape.strategy, simulation=True))
    from concrete.fhe import tfhers

    def imported(mm, rm):
        with fhe.tag("import"):  # to_native: one 5-bit lookup per digit, then the rule's two import stages
            mm, rm = to_native_digits(mm), to_native_digits(rm)
        return rule(mm, rm)

    kind = digit_type()
    # concrete takes tfhers inputset values in [0, 3] only: every width after the import comes from hints
    inputset = [(tfhers.TFHERSInteger(kind, np.full(count, v)), tfhers.TFHERSInteger(kind, np.full(count, w)))
                for v in range(4) for w in range(4)]
    compiler = fhe.Compiler(imported, {"mm": "encrypted", "rm": "encrypted"})
    return compiler.compile(inputset, _configuration(shape.strategy, simulation=False))
