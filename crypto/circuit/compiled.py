"""The compiled circuit: compile and cache, self-checking public blobs, evaluation, simulation, cost report."""
from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from crypto.circuit.gadgets import _fhe
from crypto.circuit.radix import STEPS, _radix
from crypto.circuit.report import SelectionOutput, build_inputset, pack_report
from crypto.circuit.shape import (
    ARTIFACT_NAME,
    DEFAULT_FORMULATION,
    RULE_VERSION,
    TLU_BITS,
    CircuitError,
    CircuitShape,
    circuit_cache_key,
)
from crypto.encoding import digest, to_hex
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


def _configuration(strategy: str = "mono", simulation: bool = False):
    fhe = _fhe()
    # [decided] mono parameters: one parameter set for the whole circuit keeps the evaluation keys small (their
    # sizes: bench-results/bench_fhe.json); replay was checked byte-identical with it. Parallel loops stay on.
    # Overflow detection in simulation is off: the bit extraction deliberately shifts bits out (false alarms).
    return fhe.Configuration(
        parameter_selection_strategy=strategy,
        show_progress=False,
        fhe_simulation=simulation,
        fhe_execution=not simulation,
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

    def __repr__(self) -> str:
        return (
            f"SelectionCircuit(N={self.shape.grid}, rate_bits={self.shape.rate_bits}, "
            f"mode={self.terms.hurdle_mode.value}, formulation={self.shape.formulation}, "
            f"artifact={to_hex(self.artifact_digest)[:16] or 'none'}…)"
        )

    # construction -------------------------------------------------------------------------------------------

    @classmethod
    def for_terms(cls, terms: MarketTerms, cache_dir: Path, *, formulation: str = DEFAULT_FORMULATION,
                  strategy: str = "mono") -> "SelectionCircuit":
        """Load the cached server artifact of ``terms`` or compile it (once per terms) and cache it."""
        shape = CircuitShape.from_terms(terms, formulation, strategy)
        folder = Path(cache_dir) / to_hex(circuit_cache_key(terms, formulation, strategy))
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
                json.dumps(terms.as_dict() | {"formulation": formulation, "parameter_strategy": strategy,
                                              "rule": RULE_VERSION})
            )
            os.replace(Path(tmp) / "terms.json", folder / "terms.json")
            os.replace(staged, artifact)  # atomic: a concurrent reader sees the whole artifact or none
        return cls(terms, shape, artifact, compiled=compiled, compile_seconds=seconds)

    @classmethod
    def simulation_only(cls, terms: MarketTerms, *, formulation: str = DEFAULT_FORMULATION) -> "SelectionCircuit":
        """A circuit that can only :meth:`simulate` (no FHE artifact is compiled): for wide parity sweeps."""
        return cls(terms, CircuitShape.from_terms(terms, formulation), None)

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

    def evaluate(self, evaluation_keys: bytes, ct_mm: bytes, ct_rm: bytes, *, digests: dict | None = None) -> bytes:
        """Run the circuit on public blobs only: evaluation keys + two input ciphertexts -> output blob.

        Every blob is hash-checked (embedded SHA-256, and against ``digests`` — keys ``"evaluation_keys"``,
        ``"mm"``, ``"rm"`` — when given, e.g. the digests posted on chain) before it is deserialized.
        Byte-identical in every process: it refuses to run unless the fixed FFT plan is loaded
        (:mod:`crypto.fhe_runtime`; tests/crypto/test_replay_across_processes.py).
        """
        from crypto.fhe_runtime import require_fixed_plan

        require_fixed_plan()  # an output under a timed FFT plan could not be replayed byte for byte elsewhere
        fhe = _fhe()
        digests = digests or {}
        keys = unwrap_blob("evaluation_keys", evaluation_keys, expected_digest=digests.get("evaluation_keys"))
        mm = unwrap_blob("ciphertext_mm", ct_mm, expected_digest=digests.get("mm"))
        rm = unwrap_blob("ciphertext_rm", ct_rm, expected_digest=digests.get("rm"))
        result = self.server.run(
            fhe.Value.deserialize(mm),
            fhe.Value.deserialize(rm),
            evaluation_keys=fhe.EvaluationKeys.deserialize(keys),
        )
        return wrap_blob("ciphertext_out", result.serialize())

    # simulation (no encryption) ------------------------------------------------------------------------------

    def simulate(self, mm_offsets, h_mm, rm_offsets, h_rm) -> SelectionOutput:
        """The same circuit graph without encryption (milliseconds): for wide parity tests."""
        mm = pack_report(self.shape, "mm", mm_offsets, h_mm)
        rm = pack_report(self.shape, "rm", rm_offsets, h_rm)
        return SelectionOutput.from_values(self.simulate_packed(mm, rm))

    def simulate_packed(self, mm: np.ndarray, rm: np.ndarray) -> np.ndarray:
        if self._simulator is None:
            self._simulator = _compile(self.shape, simulation=True)
        return np.asarray(self._simulator.simulate(mm, rm))

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
    folder = Path(cache_dir) / to_hex(circuit_cache_key(terms, shape.formulation, shape.strategy))
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


def _in_step_order(per_tag: dict) -> dict:
    """concrete's PBS count per tag, keyed in the rule's order (:data:`~crypto.circuit.radix.STEPS`)."""
    return {tag: int(per_tag[tag]) for tag in STEPS if tag in per_tag} | {
        tag: int(count) for tag, count in per_tag.items() if tag not in STEPS}


SIMULATION_SAMPLES = 0  # random samples of the simulation's inputset (the structured extremes are always in it)


def _compile(shape: CircuitShape, *, simulation: bool):
    fhe = _fhe()
    # every lookup input is hinted to its proven 4-bit bound (_tlu_in), so 60 random samples suffice. [measured]
    # The simulation compiles from the structured extremes alone: they give the very MLIR the 60 samples give
    # (tests/crypto/test_simulation_cache.py), and measuring bounds on each sample is most of a simulation's
    # compile (N = 64: 91 s with them, 62 s without).
    samples = SIMULATION_SAMPLES if simulation else 60
    inputset = [(pack_report(shape, "mm", mm[:-1], int(mm[-1])), pack_report(shape, "rm", rm[:-1], int(rm[-1])))
                for mm, rm in build_inputset(shape, samples=samples)]
    compiler = fhe.Compiler(_radix(shape), {"mm": "encrypted", "rm": "encrypted"})
    return compiler.compile(inputset, _configuration(shape.strategy, simulation))
