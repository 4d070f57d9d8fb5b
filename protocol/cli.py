"""The ``repo-market`` command line.

Each subcommand lives in its own module under :mod:`protocol.commands` and exposes
``HELP`` (one line), ``configure(parser)`` (its arguments) and ``run(args) -> int`` (exit status).
The common options ``--data-dir``, ``--json`` and ``--seed`` are accepted by every subcommand.
With ``--json`` a command prints exactly one JSON document on stdout and nothing else; progress and
tables go to stderr.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

# Order is the order shown by --help.
SUBCOMMANDS = (
    "demo",
    "simulate",
    "equilibria",
    "select",
    "verify",
    "export-audit",
    "allocate",
    "experiment",
    "chain",
    "bench",
)

DEFAULT_DATA_DIR = Path(".repo-market")


class UsageError(Exception):
    """Bad command-line input; the message names the option and the value."""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="data directory: keys, blob store, chain state, transcripts (default: ./.repo-market)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        help="print one machine-readable JSON document on stdout and nothing else",
    )
    common.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repo-market",
        description=(
            "Privacy-preserving smart-contract coordinator for a two-dealer repo market "
            "(Aronoff & Townsend, arXiv 2505.22940) and the contract-clearing allocation "
            "mechanism (Cha et al., arXiv 2510.05504)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = _common_options()
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"protocol.commands.{name.replace('-', '_')}")
        p = sub.add_parser(
            name,
            parents=[common],
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def _keep_exit_status(code: int) -> None:
    """Exit with ``code`` even if a native exit handler would override it.

    Measured trap: after concrete-python has run a circuit, its dataflow runtime's exit handler makes the
    process exit with status 0 whatever ``sys.exit`` asked for. An atexit hook registered after that one
    runs first (LIFO): it flushes and ends the process with the real status.
    """
    import atexit
    import os

    def _exit() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    atexit.register(_exit)


def _quiet_known_warnings() -> None:
    # concrete-python 2.11 imports pkg_resources (hence setuptools<81); its deprecation notice is noise for users.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*declare_namespace", category=DeprecationWarning)


def _preload_fixed_fft_plan() -> None:
    """Restart this process with the fixed FFT plan preloaded (crypto/fhe_runtime.py), so every FHE evaluation
    it runs is byte-identical to any other process's -- the auditor's replay depends on it. Commands that never
    evaluate still work if the plan library cannot be built; an evaluation then fails with the reason."""
    from crypto.fhe_runtime import FheRuntimeError, reexec_with_fixed_plan

    try:
        reexec_with_fixed_plan()
    except FheRuntimeError as exc:
        print(f"repo-market: warning: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a real process (not an in-process call from the tests)
        _preload_fixed_fft_plan()
    _quiet_known_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args._run(args) or 0)
        if code and argv is None and "concrete" in sys.modules:  # a real process, not an in-process call
            _keep_exit_status(code)
        return code
    except UsageError as exc:
        parser.exit(2, f"repo-market {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module so `python -m protocol.cli` raises and catches the same UsageError
    # class the subcommands import (under -m this file is also loaded as __main__).
    from protocol.cli import main as _main

    sys.exit(_main())
