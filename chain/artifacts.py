"""Compile the project's Vyper contracts in-process and cache the artifacts by source digest."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from ._io import write_atomic

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
# Cancun runs on both backends (py-evm's Prague VM and anvil); pinning it keeps the bytecode, and
# so the artifact digest, independent of the compiler's default. [decided]
EVM_VERSION = "cancun"
PINNED_VYPER = "0.4.3"  # the compiler the published bytecode comes from (constraints.txt pins it)


def pinned_compiler_problem() -> str | None:
    """None if the installed vyper is the pinned one, else what differs (code identity needs it)."""
    have = version("vyper")
    return None if have == PINNED_VYPER else f"vyper {have} installed, the contract is published with {PINNED_VYPER}"


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, deployable bytecode and the digest that names it."""

    name: str
    abi: tuple
    bytecode: bytes          # deployment (init) code
    runtime_bytecode: bytes  # code left at the address, before the immutables vyper appends to it
    source_digest: str       # sha256 hex of (compiler version, evm version, source)

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, {len(self.bytecode)} bytes, {self.source_digest[:12]})"


def source_path(name_or_path: str | Path) -> Path:
    """A contract name ("Coordinator") resolves to chain/contracts/<name>.vy; a path is taken as is."""
    path = Path(name_or_path)
    if path.suffix != ".vy":
        path = CONTRACTS_DIR / f"{name_or_path}.vy"
    if not path.is_file():
        raise FileNotFoundError(f"contract source not found: {path}")
    return path


_compiled: dict[str, Artifact] = {}  # per process, by digest: a data dir's cache may be empty


def compile_contract(name_or_path: str | Path, cache_dir: Path | None = None) -> Artifact:
    """Compile a Vyper source with vyper.compile_code, reusing ``cache_dir/<digest>.json`` if present."""
    path = source_path(name_or_path)
    source = path.read_text()
    digest = hashlib.sha256(
        f"vyper {version('vyper')}\nevm {EVM_VERSION}\n".encode() + source.encode()
    ).hexdigest()
    cached = Path(cache_dir) / f"{digest}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        data = json.loads(cached.read_text())
        if "runtime" in data:
            return Artifact(path.stem, tuple(data["abi"]), bytes.fromhex(data["bytecode"]),
                            bytes.fromhex(data["runtime"]), digest)
    if digest in _compiled:
        artifact = _compiled[digest]
        if cached is not None:
            _save(cached, artifact)
        return artifact

    import vyper
    from vyper.compiler.settings import Settings

    out = vyper.compile_code(
        source,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=Settings(evm_version=EVM_VERSION),
        contract_path=str(path.name),
    )
    artifact = Artifact(path.stem, tuple(out["abi"]), bytes.fromhex(out["bytecode"].removeprefix("0x")),
                        bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")), digest)
    if cached is not None:
        _save(cached, artifact)
    _compiled[digest] = artifact
    return artifact


def _save(path: Path, artifact: Artifact) -> None:
    write_atomic(path, json.dumps({"name": artifact.name, "abi": list(artifact.abi), "bytecode": artifact.bytecode.hex(),
                                   "runtime": artifact.runtime_bytecode.hex()}).encode())
