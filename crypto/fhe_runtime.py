"""Byte-identical FHE evaluation across processes: the fixed FFT plan.

[measured] concrete-python 2.11's runtime (concrete-fft 0.5.1) picks its FFT plan per process by timing the
candidates; two processes that picked different plans give different -- equally valid -- output ciphertexts
for the same inputs and keys (six concurrent processes: five distinct outputs). An auditor could then not
check an evaluator's posted output by replaying it. ``crypto/fixed_fft_plan.c``, loaded with ``LD_PRELOAD``,
makes the runtime's plan timing see a clock on which every candidate ties, so the first candidate in the
library's fixed order is used in every process (same six processes: one output). See the C file for how.

Surface:

* :func:`fixed_plan_active` -- is the library loaded in this process?
* :func:`require_fixed_plan` -- raise :class:`FheRuntimeError` unless it is (called before every evaluation,
  so no output is ever produced under a timed plan);
* :func:`reexec_with_fixed_plan` -- restart the current process with the library preloaded (the
  ``repo-market`` entry point and the test suite call it first thing);
* :func:`environment_with_fixed_plan` -- an environment for child processes;
* :func:`build_library` -- compile the library (``cc``, once per source digest; ``scripts/setup.sh`` does it).

``python -m crypto.fhe_runtime`` builds the library and prints its path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from crypto.errors import CryptoError

__all__ = [
    "FheRuntimeError",
    "build_library",
    "environment_with_fixed_plan",
    "fixed_plan_active",
    "library_path",
    "reexec_with_fixed_plan",
    "require_fixed_plan",
]

SOURCE = Path(__file__).with_name("fixed_fft_plan.c")
MARKER = "repo_market_fixed_fft_plan"  # a symbol the library exports
_REEXEC_FLAG = "REPO_MARKET_FIXED_FFT_PLAN_REEXEC"  # set before re-exec: a second failure is an error, not a loop


class FheRuntimeError(CryptoError, RuntimeError):
    """The fixed FFT plan is not in place (or cannot be built); the message says how to fix it."""


def _source_digest() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def library_path() -> Path:
    """Where the built library lives: ``<checkout>/.tools/`` for a source checkout, else the user cache.

    The file name carries the source digest, so a changed source is rebuilt, never silently reused."""
    name = f"libfixed_fft_plan-{_source_digest()}.so"
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout / ".tools" / name
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "repo-market"
    return cache / name


def build_library() -> Path:
    """Compile ``fixed_fft_plan.c`` with the system C compiler if not built yet; returns its path.

    Atomic: compiled to a temporary file in the same folder, then renamed, so a concurrent process never
    preloads a half-written library."""
    target = library_path()
    if target.is_file():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise FheRuntimeError(
            "no C compiler (cc/gcc) found: it is needed once to build the fixed FFT plan library "
            f"from {SOURCE} (Debian: apt-get install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-ldl"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise FheRuntimeError(f"building {SOURCE.name} with {compiler} failed: {done.stderr.strip()[-500:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def fixed_plan_active() -> bool:
    """True if the fixed-plan library is loaded in this process (its marker symbol is visible)."""
    try:
        ctypes.c_int.in_dll(ctypes.CDLL(None), MARKER)
    except ValueError:
        return False
    return True


def require_fixed_plan() -> None:
    """Raise unless evaluations in this process are byte-identical to every other process's."""
    if not fixed_plan_active():
        raise FheRuntimeError(
            "FHE evaluation needs the fixed FFT plan so that every process computes byte-identical outputs: "
            "run through `repo-market` (it preloads it), or start Python with "
            f"LD_PRELOAD={library_path()} (build it with `python -m crypto.fhe_runtime`)")


def environment_with_fixed_plan(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: this process's) whose ``LD_PRELOAD`` starts with the library."""
    env = dict(os.environ if env is None else env)
    lib = str(build_library())
    preload = [p for p in env.get("LD_PRELOAD", "").split() if p and p != lib]
    env["LD_PRELOAD"] = " ".join([lib, *preload])
    return env


def _own_command_line() -> list[str]:
    """This process's exact argv (``python -m pkg.mod args`` included), from ``/proc``."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return [sys.executable, *sys.argv]
    args = [part.decode() for part in raw.split(b"\0") if part]
    return args or [sys.executable, *sys.argv]


def reexec_with_fixed_plan() -> None:
    """Replace this process by the same command with the library preloaded, unless it already is.

    Call before anything is printed, opened or started (it is the first thing the CLI does). Raises
    :class:`FheRuntimeError` if the library is still absent after a re-exec (e.g. a loader that ignores
    ``LD_PRELOAD``) instead of looping."""
    if fixed_plan_active():
        os.environ.pop(_REEXEC_FLAG, None)  # children start from a clean slate
        return
    if os.environ.get(_REEXEC_FLAG):
        raise FheRuntimeError(
            f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r} did not load the fixed FFT plan library")
    env = environment_with_fixed_plan()
    env[_REEXEC_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, _own_command_line(), env)


if __name__ == "__main__":
    print(build_library())
