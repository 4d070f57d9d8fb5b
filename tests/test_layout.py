"""The four top-level packages import, and the import rules of ARCHITECTURE.md hold.

Rules: ``common`` (small helpers) imports nothing of the project and every package may import it; ``market``
imports nothing else of the project; ``crypto`` may import ``market``; ``chain`` imports neither ``protocol``
nor (being a standalone chain layer) ``market``/``crypto``; ``protocol`` may import all.
The check parses every module's AST, so it also covers imports inside functions.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "market", "crypto", "protocol", "chain")
FORBIDDEN = {
    "common": {"market", "crypto", "protocol", "chain"},
    "market": {"crypto", "protocol", "chain"},
    "crypto": {"protocol", "chain"},
    "chain": {"protocol", "market", "crypto"},
    "protocol": set(),
}


def _imported_top_levels(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add((alias.name.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == ROOT / package


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package):
    violations = []
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    for path in files:
        for name, line in _imported_top_levels(path):
            if name in FORBIDDEN[package]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert violations == []


def test_import_rule_checker_detects_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from protocol import cli\n")
    assert ("protocol", 2) in _imported_top_levels(bad)


def test_console_script_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "protocol.cli", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    for name in ("demo", "simulate", "equilibria", "select", "verify", "allocate", "experiment", "chain", "bench"):
        assert name in out.stdout
