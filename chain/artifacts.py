"""Compile the project's Vyper contracts in-process and cache the artifacts by source digest.

The compiled form of every contract is also checked in as ``chain/contracts/build/<Name>.json`` (ABI,
deploy and runtime bytecode, storage layout, NatSpec, event topics, compiler and source sha256) for
auditors without Python. [decided] The code never loads it: it always compiles the source with the pinned
compiler (the source is the truth; a stale or edited JSON cannot change what is deployed or what verify
compares against). tests/chain/test_build_artifacts.py keeps the JSON equal to a fresh compile;
``python -m chain.artifacts --write`` regenerates it after a contract change.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from eth_utils import keccak

from common import strict_json

from ._io import write_atomic

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
CONTRACT_NAMES = ("Coordinator", "Clearing")
PINNED_VYPER = "0.4.3"  # pyproject pins vyper==0.4.3; the build JSON names the compiler that made it
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
        data = strict_json.loads(cached.read_text())
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


BUILD_FORMAT = "repo-market-contract-build-v1"


def build_record(name: str) -> dict:
    """The checked-in build JSON of contract ``name``, compiled fresh (nothing read from disk but the source).

    Fields: abi; bytecode (deploy code) and runtime_bytecode (0x hex; the deployed code is the runtime
    bytecode followed by the immutables, 32 bytes each in ``layout.code_layout`` order); compiler;
    evm_version; source_path; source_sha256 (sha256 of the .vy file's bytes); layout (``vyper -f layout``);
    method_identifiers; devdoc; userdoc; event_topics (event signature -> keccak256 topic 0).
    """
    import vyper
    from vyper.compiler.settings import Settings

    path = source_path(name)
    source = path.read_bytes()
    if vyper.__version__ != PINNED_VYPER:
        raise RuntimeError(f"vyper {vyper.__version__} installed, the build is pinned to {PINNED_VYPER}")
    out = vyper.compile_code(
        source.decode(),
        output_formats=["abi", "bytecode", "bytecode_runtime", "layout", "method_identifiers", "devdoc",
                        "userdoc"],
        settings=Settings(evm_version=EVM_VERSION),
        contract_path=str(path.name),
    )
    topics = {}
    for entry in out["abi"]:
        if entry.get("type") == "event":
            signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
            topics[signature] = "0x" + keccak(text=signature).hex()
    return {
        "format": BUILD_FORMAT,
        "name": path.stem,
        "compiler": f"vyper {vyper.__long_version__}",
        "evm_version": EVM_VERSION,
        "source_path": f"chain/contracts/{path.name}",
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "abi": out["abi"],
        "bytecode": "0x" + out["bytecode"].removeprefix("0x"),
        "runtime_bytecode": "0x" + out["bytecode_runtime"].removeprefix("0x"),
        "layout": out["layout"],
        "method_identifiers": {k: v if str(v).startswith("0x") else hex(v)
                               for k, v in out["method_identifiers"].items()},
        "devdoc": out["devdoc"],
        "userdoc": out["userdoc"],
        "event_topics": topics,
    }


def build_path(name: str) -> Path:
    return BUILD_DIR / f"{name}.json"


def render_build(record: dict) -> bytes:
    """The file form of a build record (sorted keys, 1-space indent, trailing newline)."""
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def load_build(name: str) -> dict:
    """The checked-in build JSON of ``name`` (for docs, export-audit and tests; never used to deploy)."""
    path = build_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checked-in build (python -m chain.artifacts --write)")
    return strict_json.loads(path.read_text())


def write_builds(names=CONTRACT_NAMES) -> list[Path]:
    written = []
    for name in names:
        path = build_path(name)
        write_atomic(path, render_build(build_record(name)))
        path.chmod(0o644)  # public, checked in
        written.append(path)
    return written


def stale_builds(names=CONTRACT_NAMES) -> list[str]:
    """Names whose checked-in build JSON differs from a fresh compile (or is missing)."""
    stale = []
    for name in names:
        path = build_path(name)
        if not path.is_file() or path.read_bytes() != render_build(build_record(name)):
            stale.append(name)
    return stale


if __name__ == "__main__":  # python -m chain.artifacts [--write]
    import sys

    if "--write" in sys.argv[1:]:
        for written in write_builds():
            print(written)
    else:
        stale = stale_builds()
        print("stale: " + ", ".join(stale) if stale else "build JSON up to date")
        sys.exit(1 if stale else 0)
