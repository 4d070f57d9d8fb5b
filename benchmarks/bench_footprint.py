"""Install footprint and suite time: what the README's "Install footprint and CI time" section states.

Default (seconds): sizes on disk of this checkout's ``.venv`` and ``.tools`` and the fixed-FFT-plan
library. With ``--clean-clone``: clones this repository (HEAD) into a temporary folder and
times, there, exactly what a fresh machine runs: ``scripts/setup.sh --with-anvil`` (the first install),
then ``bash .ci/run`` with ``CI=true`` (the README's test command; its setup step is then a no-op). Records
the suite's test counts from pytest's summary line, the clone's ``.venv`` size and the load average around
each step (the suite reads no user cache: its owner-encryption proofs use a TEST-ONLY CRS made in seconds).

Usage: .venv/bin/python benchmarks/bench_footprint.py [--clean-clone] [--out FILE]
Writes JSON (default bench-results/bench_footprint.json; a run without --clean-clone keeps the previous
clean-clone section) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from crypto.fhe_runtime import library_path  # noqa: E402

SUMMARY = re.compile(r"=+ (?P<body>.*?) in [\d.]+s")


def tree_bytes(path: Path, skip_prefix: str | None = None) -> int | None:
    """Bytes of the regular files under ``path`` (links not followed; top-level entries whose name starts with
    ``skip_prefix`` left out), None when it does not exist."""
    if not path.exists():
        return None
    total = 0
    for folder, dirs, files in os.walk(path):
        if skip_prefix and Path(folder) == path:
            dirs[:] = [d for d in dirs if not d.startswith(skip_prefix)]
        for name in files:
            p = Path(folder) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def sizes() -> dict:
    library = library_path()
    return {
        "venv_bytes": tree_bytes(ROOT / ".venv"),
        "tools_bytes": tree_bytes(ROOT / ".tools", skip_prefix="probe-"),  # probes are not part of the install
        "fixed_fft_plan_library_bytes": library.stat().st_size if library.is_file() else None,
    }


def pytest_counts(output: str) -> dict[str, int]:
    """``{"passed": 1099, "skipped": 2, ...}`` from pytest's last summary line."""
    lines = [m.group("body") for m in SUMMARY.finditer(output)]
    if not lines:
        raise SystemExit("bench_footprint: no pytest summary line in the suite's output")
    counts = {}
    for part in lines[-1].split(","):
        number, _, word = part.strip().partition(" ")
        if number.isdigit():
            counts[word] = int(number)
    return counts


def _timed(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, int, str]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w") as sink:
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    print(f"  {' '.join(cmd)}: exit {rc}, {seconds:.0f} s (load {load:.1f} before)", file=sys.stderr, flush=True)
    return seconds, rc, log.read_text(errors="replace")


def clean_clone() -> dict:
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True,
                              text=True).stdout.strip()
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")} | {"CI": "true"}
        load_setup = os.getloadavg()[0]
        setup_s, setup_rc, _ = _timed(["bash", "scripts/setup.sh", "--with-anvil"], clone, env, Path(tmp) / "setup.log")
        if setup_rc != 0:
            raise SystemExit(f"bench_footprint: setup failed in the clean clone (exit {setup_rc})")
        venv = tree_bytes(clone / ".venv")
        load_suite = os.getloadavg()[0]
        suite_s, suite_rc, output = _timed(["bash", ".ci/run"], clone, env, Path(tmp) / "suite.log")
        counts = pytest_counts(output)
    return {
        "commit": head, "setup_s": setup_s, "suite_s": suite_s, "suite_exit_status": suite_rc,
        "tests": counts, "clone_venv_bytes": venv,
        "load_average_1m": {"before_setup": load_setup, "before_suite": load_suite, "after": os.getloadavg()[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-clone", action="store_true", help="time setup + the test command in a fresh clone")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_footprint.json")
    args = parser.parse_args()
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc["machine"] = machine()
    doc["sizes"] = sizes()
    if args.clean_clone:
        doc["clean_clone"] = clean_clone()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    s = doc["sizes"]
    rows = [("checkout .venv", f"{(s['venv_bytes'] or 0) / 1e9:.2f} GB"),
            ("checkout .tools", f"{(s['tools_bytes'] or 0) / 1e6:.0f} MB"),
            ("fixed FFT plan library", f"{s['fixed_fft_plan_library_bytes'] or 0:,} B")]
    if "clean_clone" in doc:
        c = doc["clean_clone"]
        rows += [("clean clone: setup", f"{c['setup_s']:.0f} s"),
                 ("clean clone: test command", f"{c['suite_s']:.0f} s, exit {c['suite_exit_status']}, {c['tests']}")]
    for name, value in rows:
        print(f"{name:<28}  {value}")
    if "clean_clone" in doc and doc["clean_clone"]["suite_exit_status"] != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
