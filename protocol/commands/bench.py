"""`repo-market bench NAME [ARGS...]`: run benchmarks/bench_NAME.py and write its JSON.

Each benchmark script writes bench-results/bench_NAME.json and prints a table; with --json this command
prints that JSON document on stdout (the script's table goes to stderr). Extra arguments after NAME are
passed to the script (e.g. `repo-market bench protocol --backend simulate`).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from protocol.cli import ReportedFailure, UsageError

HELP = "run a benchmark script and write its JSON"
DESCRIPTION = __doc__
ROOT = Path(__file__).resolve().parents[2]


def _available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


def configure(parser) -> None:
    parser.add_argument("name", metavar="NAME", help="benchmark name: " + (", ".join(_available()) or "none found"))
    parser.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="arguments passed to the script")


def validate(args) -> None:
    if "--json" in args.script_args:  # after NAME too, --json is this command's (no benchmark script has its own)
        args.script_args = [a for a in args.script_args if a != "--json"]
        args.json = True
    names = _available()
    if args.name not in names:
        raise UsageError(f"NAME {args.name!r}: unknown benchmark (available: {', '.join(names) or 'none'})")


def run(args) -> int:
    names = _available()
    if args.name not in names:
        raise UsageError(f"NAME {args.name!r}: unknown benchmark (available: {', '.join(names) or 'none'})")
    script = ROOT / "benchmarks" / f"bench_{args.name}.py"
    out = ROOT / "bench-results" / f"bench_{args.name}.json"
    extra = list(args.script_args)
    if "--out" in extra:
        out = Path(extra[extra.index("--out") + 1])
    result = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT,
                            stdout=sys.stderr if args.json else None)
    if result.returncode != 0:
        raise ReportedFailure(f"benchmarks/bench_{args.name}.py exited with status {result.returncode}")
    if args.json:
        if not out.exists():
            raise ReportedFailure(f"benchmarks/bench_{args.name}.py wrote no JSON at {out}")
        print(out.read_text().strip())
    return 0
