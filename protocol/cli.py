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
import json
import os
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from chain.errors import ChainPackageError
from chain.node import RpcReplyError, rpc_request
from common.strict_json import JsonInputError
from crypto.errors import CryptoError
from crypto.fhe_runtime import FheRuntimeError, private_fallback_dir
from market import load_schedules
from market.errors import MarketError
from market.limits import MAX_SEED, LimitError, check_range
from protocol.errors import ProtocolPackageError
from protocol.layout import check_market_file, data_dir_lock

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


HELP_HINT = "(see --help)"


class _ParserUsageError(Exception):
    """argparse found bad input; ``prog`` is the (sub)command it was parsing."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (main() prints it), not the usage block and the
    message; subcommands' parsers are of the same class (argparse makes them with ``type(parent)``).
    Options must be spelled out (no abbreviations): what the user wrote is what errors name."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):  # noqa: D102 -- argparse's hook
        raise _ParserUsageError(self.prog, message)


def _common_options() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
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
    parser = OneLineParser(
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
        p.set_defaults(_run=module.run, _validate=getattr(module, "validate", None))
    return parser


def _given_options(parser, args, argv: list[str]) -> frozenset[str]:
    """The long option strings the user wrote (``--x`` or ``--x=v``), each as its subcommand defines it."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = sub.choices.get(args.command) if sub is not None else None
    if command is None:
        return frozenset()
    known = command._option_string_actions
    given = set()
    for word in argv:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if name in known:
            given.update(s for s in known[name].option_strings if s.startswith("--"))
    return frozenset(given)


def given(args, option: str) -> bool:
    """Did the user write ``option`` (e.g. "--hurdle-bits") on the command line?"""
    return option in getattr(args, "_given", frozenset())


def refuse_unused(args, options, why: str) -> None:
    """A UsageError for the first of ``options`` the user gave that this run would ignore."""
    for option in options:
        if given(args, option):
            value = getattr(args, option.lstrip("-").replace("-", "_"), None)
            shown_value = " ".join(map(str, value)) if isinstance(value, list) else value
            raise UsageError(f"{option} {shown_value}: {why}" if shown_value not in (None, True, False)
                             else f"{option}: {why}")


def _quiet_known_warnings() -> None:
    # concrete-python 2.11 imports pkg_resources (hence setuptools<81); its deprecation notice is noise for users.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*declare_namespace", category=DeprecationWarning)


def _writable_matplotlib_dir() -> None:
    """Point matplotlib at a private writable folder when its default (~/.config/matplotlib) is not
    writable: otherwise it prints a two-line warning and leaves a temporary folder behind on every run."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    try:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
        existing = base
        while not existing.exists() and existing.parent != existing:  # matplotlib would create the rest
            existing = existing.parent
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return
    except (OSError, RuntimeError):  # unreadable, read-only or absent home
        pass

    try:
        folder = private_fallback_dir() / "matplotlib"
        folder.mkdir(mode=0o700, exist_ok=True)
    except (OSError, FheRuntimeError):
        return  # matplotlib then falls back on its own temporary folder
    os.environ["MPLCONFIGDIR"] = str(folder)


DEBUG_ENV = "REPO_MARKET_DEBUG"

# Commands that write into the data directory take its exclusive lock (protocol.layout.data_dir_lock) [decided];
# verify is a reader and takes none (an auditor's copy may be read-only); equilibria, experiment and bench
# never touch the data directory, and allocate only with --method onchain (its embedded chain lives there).
WRITERS = frozenset({"demo", "simulate", "select", "allocate", "chain"})


def _writes_data_dir(args) -> bool:
    if args.command == "allocate":
        return args.method == "onchain"
    return args.command in WRITERS


def check_option(option: str, value, low: int, high: int) -> int:
    """``value`` if it is an integer in ``low..high`` (market.limits), else a UsageError naming the option."""
    try:
        return check_range(option, value, low, high)
    except LimitError as exc:
        raise UsageError(str(exc)) from None


def check_rpc(url: str | None, option: str = "--rpc") -> None:
    """An http(s) URL of a node that answers ``eth_chainId``, checked before anything is created."""
    if url is None:
        return

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"{option} {url!r}: must be an http(s) URL")

    try:
        rpc_request(url, "eth_chainId", timeout=5.0)
    except RpcReplyError as exc:  # a node, but its answer is malformed: say what it answered
        raise UsageError(f"{option} {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- any failure to reach the node is the same user error
        reason = getattr(exc, "reason", None) or exc
        raise UsageError(f"{option} {url}: no JSON-RPC node answers there ({_one_line(str(reason))})") from None


def load_schedules_option(path: Path, option: str = "--schedules"):
    """Schedules from a file given on the command line (market.load_schedules checks the file and every
    rate), every failure a UsageError naming the option and the file."""
    try:
        return load_schedules(path)
    except ValueError as exc:  # ScheduleError: the message starts with the file name
        raise UsageError(f"{option} {exc}") from None


def shown(value, limit: int = 60) -> str:
    """A value as an error message shows it: whole if short, else its start and its length."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_path_names(option: str, path: Path | None) -> None:
    """Every component of ``path`` within the file system's name limit (NAME_MAX, 255 bytes on Linux) and
    the whole within PATH_MAX, so an over-long name is a usage error, not an OSError half-way through."""
    if path is None:
        return

    encoded = os.fsencode(str(path))
    if len(encoded) >= 4096:
        raise UsageError(f"{option} {shown(path)}: a path of {len(encoded)} bytes; the limit is 4095")
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > 255:
            raise UsageError(f"{option} {shown(path)}: the name {shown(part, 30)} has {size} bytes; "
                             "the limit is 255")


class WriteError(OSError):
    """Writing a named output failed (reported as "cannot write PATH: reason")."""


@contextmanager
def naming(path: Path):
    """Let an OSError raised while writing ``path`` name it (a full disk's EFBIG/ENOSPC names no file)."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(exc.errno, exc.strerror or str(exc), str(exc.filename or path)) from None


def check_output_file(option: str, path: Path | None) -> None:
    """A file to be written: its folder must exist and it must not be a directory."""
    if path is None:
        return
    check_path_names(option, path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; expected a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")


def check_output_dir(option: str, path: Path | None) -> None:
    """A folder to be written into: it exists as a folder, or its parent does."""
    if path is None:
        return
    check_path_names(option, path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a directory")
    if not path.exists() and not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")


# Commands that draw nothing at random: a --seed given to them would be accepted and ignored [decided]
# (select's FHE keys come from the system's randomness; verify and export-audit read a market's own seed).
SEEDLESS = frozenset({"equilibria", "select", "verify", "export-audit", "chain"})


def _common_checks(args) -> None:
    check_option("--seed", args.seed, 0, MAX_SEED)
    if args.command in SEEDLESS and given(args, "--seed"):
        raise UsageError(f"--seed {args.seed}: `repo-market {args.command}` draws nothing at random; drop --seed")
    check_path_names("--data-dir", args.data_dir)
    if args.data_dir.exists() and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: exists and is not a directory")
    if args.command in ("demo", "verify"):  # the commands that open a market from market.json

        check_market_file(args.data_dir)


def _project_errors() -> tuple[type, ...]:
    """Every error class of the project, a failure the user can act on, shown as one line (exit status 1): the
    base class of each package's errors."""
    return (JsonInputError, MarketError, CryptoError, ChainPackageError, ProtocolPackageError)


def environment_error(exc: OSError) -> str:
    """One line for an error of the environment: the file and the system's reason, e.g.
    ``cannot write out/x.json: File too large`` (no errno, no traceback)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    if isinstance(exc, WriteError):
        verb = "cannot write"
    elif isinstance(exc, FileNotFoundError):
        verb = "cannot find"
    elif isinstance(exc, PermissionError):
        verb = "no permission for"
    else:
        verb = "cannot use"
    return f"{verb} {' -> '.join(names)}: {reason}" if names else f"{type(exc).__name__}: {reason}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def failure_document(kind: str, message: str) -> dict:
    """The one shape of every failure's JSON document: ``{"ok": false, "error": KIND, "detail": LINE}``."""
    return {"ok": False, "error": kind, "detail": _one_line(message)}


def _report_failure(args, kind: str, message: str, prog: str | None = None, as_json: bool | None = None) -> None:
    """A failure: one clean line on stderr; with --json also one JSON document on stdout
    (:func:`failure_document`). ``kind`` is "usage error" (exit 2), "error" or "internal error" (exit 1)."""
    if prog is None:
        prog = f"repo-market {getattr(args, 'command', None) or ''}".rstrip()
    line = _one_line(message)
    if kind == "usage error" and HELP_HINT not in line:
        line = f"{line} {HELP_HINT}"
    print(f"{prog}: {'error' if kind == 'usage error' else kind}: {line}", file=sys.stderr)
    if getattr(args, "json", False) if as_json is None else as_json:
        print(json.dumps(failure_document(kind, line)))


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the final flush cannot fail again (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class ReportedFailure(ProtocolPackageError):
    """A run-time failure a command names itself (exit 1, one line / one failure document)."""


class _FailedWithStatus(Exception):
    """A command that reported its own failure and returned a non-zero status."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _dispatch(parser, args) -> int:
    """Run the subcommand; every failure becomes an exit status and one line, never a traceback."""
    try:
        _common_checks(args)
        if args._validate is not None:
            args._validate(args)
        if _writes_data_dir(args):
            try:
                with data_dir_lock(args.data_dir, args.command):
                    code = int(args._run(args) or 0)
                    if code != 0:
                        raise _FailedWithStatus(code)  # the lock's cleanup treats it like any failure
                    return code
            except _FailedWithStatus as failed:
                return failed.code
        return int(args._run(args) or 0)
    except UsageError as exc:  # like argparse's own usage errors: one line naming the option and the value
        _report_failure(args, "usage error", str(exc))
        return 2
    except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing left to tell it
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as the shell reports a writer killed by it
    except KeyboardInterrupt:
        _report_failure(args, "error", "interrupted")
        return 130
    except RecursionError:
        _report_failure(args, "error", "input nested too deeply")
        return 1
    except Exception as exc:  # noqa: BLE001 -- the one place that turns every error into an exit status
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        if isinstance(exc, _project_errors()):
            _report_failure(args, "error", f"{exc}" or type(exc).__name__)
        elif isinstance(exc, OSError):  # the environment: a full disk, a read-only or unreadable folder
            _report_failure(args, "error", environment_error(exc))
        else:
            _report_failure(args, "internal error", f"{type(exc).__name__}: {exc} "
                                                    f"(rerun with {DEBUG_ENV}=1 for the traceback)")
        return 1


def _exit_now(code: int) -> None:
    """End a real process with ``code``, flushed, skipping every exit handler.

    Measured trap: after concrete-python has run a circuit, its dataflow runtime's native exit handler ends
    the process with status 0 whatever ``sys.exit`` asked for (and its worker threads may print on the way
    out). Every write of ours is complete and atomic before this point, so nothing is lost by skipping them.
    """
    try:
        sys.stdout.flush()
    finally:
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    real_process = argv is None  # a real process (not an in-process call from the tests)
    _quiet_known_warnings()
    if real_process:
        _writable_matplotlib_dir()
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named by the subcommand that did not know them (parse_args would name only "repo-market")
            raise _ParserUsageError(f"repo-market {args.command}", f"unrecognized arguments: {' '.join(extra)}")
    except _ParserUsageError as exc:  # argparse's bad input: one line, like every other usage error
        words = sys.argv[1:] if argv is None else argv
        _report_failure(None, "usage error", str(exc), prog=exc.prog, as_json="--json" in words)
        if real_process:
            _exit_now(2)
        raise SystemExit(2) from None
    except SystemExit as exc:  # argparse: --help (0), already printed
        if real_process:
            _exit_now(int(exc.code or 0))
        raise
    args._given = _given_options(parser, args, sys.argv[1:] if argv is None else argv)
    code = _dispatch(parser, args)
    if real_process:
        _exit_now(code)
    if code == 2:  # an in-process caller sees a usage error as argparse reports one
        raise SystemExit(2)
    return code


if __name__ == "__main__":  # pragma: no cover
    # Through the entry (the fixed-plan restart) and the package module, so `python -m protocol.cli` raises and
    # catches the same UsageError class the subcommands import (under -m this file is also loaded as __main__).
    from protocol.entry import main as _main

    sys.exit(_main())
