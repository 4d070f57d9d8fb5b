"""The four top-level packages import, and the import rules of ARCHITECTURE.md hold.

Rules: ``common`` (small helpers) imports nothing of the project and every package may import it; ``market``
imports nothing else of the project; ``crypto`` may import ``market``; ``chain`` imports neither ``protocol``
nor (being a standalone chain layer) ``market``/``crypto``; ``protocol`` may import all.
The check parses every module's AST, so it also covers imports inside functions.
"""
from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
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
        [sys.executable, "-m", "protocol", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    for name in ("demo", "simulate", "equilibria", "select", "verify", "allocate", "experiment", "chain", "bench"):
        assert name in out.stdout


def test_bench_in_an_installed_copy_says_in_one_line_that_benchmarks_need_the_checkout(tmp_path):
    """The four packages copied alone, as an install puts them (no benchmarks/ beside them): ``bench`` fails
    with one line naming the reason, and with --json one failure document."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def bench(*words):
        return subprocess.run([sys.executable, "-m", "protocol", "bench", "fhe", *words], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=300)

    out = bench("--cost-only")
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if not line.startswith("repo-market: warning:")]
    assert len(lines) == 1 and "benchmarks need the repository checkout" in lines[0], out.stderr
    assert str(tmp_path / "benchmarks") in lines[0]
    doc = json.loads(bench("--json").stdout)
    assert doc["ok"] is False and "benchmarks need the repository checkout" in doc["detail"]
    assert not (tmp_path / "bench-results").exists()
