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
import functools
import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from crypto.errors import CryptoError

__all__ = [
    "FheRuntimeError",
    "build_library",
    "environment_with_fixed_plan",
    "faked_clock_reads",
    "fixed_plan_active",
    "library_path",
    "reexec_with_fixed_plan",
    "require_fixed_plan",
]

SOURCE = Path(__file__).with_name("fixed_fft_plan.c")
MARKER = "repo_market_fixed_fft_plan"  # exported by the library: the digest of the source it was built from
FAKES = "repo_market_fixed_fft_plan_fakes"  # exported counter of clock reads answered from the fake clock
_REEXEC_FLAG = "REPO_MARKET_FIXED_FFT_PLAN_REEXEC"  # set before re-exec: a second failure is an error, not a loop


class FheRuntimeError(CryptoError, RuntimeError):
    """The fixed FFT plan is not in place (or cannot be built); the message says how to fix it."""


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """Digest of the C source (read once: fixed_plan_active runs before every evaluation)."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def library_path() -> Path:
    """Where the built library lives: ``<checkout>/.tools/`` for a source checkout, else the user cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``repo-market/``); with no home directory at all, the
    per-user fallback folder (:func:`fallback_dir`).

    The file name carries the source digest, so a changed source is rebuilt, never silently reused."""
    name = f"libfixed_fft_plan-{_source_digest()}.so"
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout / ".tools" / name
    try:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no HOME and no passwd entry for this uid
        return fallback_dir() / name
    return cache / "repo-market" / name


def fallback_dir() -> Path:
    """A private folder of this user under the temporary directory (``$TMPDIR``, else /tmp), used when the
    usual place cannot be read or written (an unreadable cache, a read-only home, a full disk there)."""
    return Path(tempfile.gettempdir()) / f"repo-market-{os.getuid()}"


def private_fallback_dir() -> Path:
    """:func:`fallback_dir`, created 0700 if absent; an OSError if it cannot be, or a FheRuntimeError if it
    belongs to someone else or others can write it (another user could have made it first in /tmp)."""
    folder = fallback_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _ForeignLibrary(f"{folder}: owned by uid {info.st_uid} with mode {stat.filemode(info.st_mode)}; "
                              "the fallback folder must belong to this user and not be group/world-writable")
    return folder


class _ForeignLibrary(FheRuntimeError):
    """A library or folder someone else owns or can write: refused, never worked around."""


def _check_not_foreign(path: Path) -> None:
    """A library we preload into the custodian's key-holding process must be ours and writable only by us."""
    for item in (path, path.parent):
        info = item.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise _ForeignLibrary(
                f"{item}: owned by uid {info.st_uid} with mode {stat.filemode(info.st_mode)}; the fixed FFT plan "
                "library and its folder must belong to this user and not be group/world-writable")


def _compiler() -> list[str]:
    compiler = shlex.split(os.environ.get("CC", ""))
    if not compiler:
        found = shutil.which("cc") or shutil.which("gcc")
        compiler = [found] if found else []
    if not compiler:
        raise FheRuntimeError(
            "no C compiler (cc/gcc) found: it is needed once to build the fixed FFT plan library "
            f"from {SOURCE} (Debian: apt-get install gcc)")
    return compiler


def _build_at(target: Path, private: bool = False) -> Path:
    """The library at ``target``, compiled there if absent (atomic: temporary file, then rename).
    Raises FheRuntimeError naming the cause."""
    tmp = None
    try:
        if target.is_file():
            _check_not_foreign(target)
            return target
        compiler = _compiler()
        if private:
            private_fallback_dir()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".so")
        os.close(fd)
        define = f'-DFIXED_FFT_PLAN_SOURCE_DIGEST="{_source_digest()}"'
        done = subprocess.run([*compiler, "-O2", "-shared", "-fPIC", define, "-o", tmp, str(SOURCE), "-ldl"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise FheRuntimeError(
                f"building {SOURCE.name} with {' '.join(compiler)} failed: {done.stderr.strip()[-500:]}")
        os.chmod(tmp, 0o755)  # readable by the loader whoever runs the checkout; writable only by us
        os.replace(tmp, target)
    except OSError as exc:
        raise FheRuntimeError(f"cannot build the fixed FFT plan library at {target}: "
                              f"{exc.strerror or exc}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    try:
        _check_not_foreign(target)
    except OSError as exc:
        raise FheRuntimeError(f"cannot check the fixed FFT plan library at {target}: {exc.strerror}") from exc
    return target


def build_library(notice=None) -> Path:
    """Compile ``fixed_fft_plan.c`` with the system C compiler if not built yet; returns its path.

    Atomic: compiled to a temporary file in the same folder, then renamed, so a concurrent process never
    preloads a half-written library. If the usual place (:func:`library_path`) cannot be read or written,
    the library is built in :func:`fallback_dir` (0700) instead and ``notice`` (if given) gets one line
    saying so. Every failure (no compiler, no usable folder) is a :class:`FheRuntimeError` naming the
    cause; a library or folder owned or writable by someone else is refused, never worked around."""
    try:
        preferred = library_path()
    except OSError as exc:  # e.g. the checkout's folder cannot be examined
        preferred, first_error = None, FheRuntimeError(f"no usable library folder ({exc.strerror})")
    else:
        try:
            return _build_at(preferred)
        except _ForeignLibrary:
            raise
        except FheRuntimeError as exc:
            first_error = exc
    fallback = fallback_dir() / f"libfixed_fft_plan-{_source_digest()}.so"
    if fallback == preferred:
        raise first_error
    try:
        path = _build_at(fallback, private=True)
    except _ForeignLibrary:
        raise
    except FheRuntimeError as exc:
        raise FheRuntimeError(f"{first_error}; fallback: {exc}") from None
    if notice is not None:
        notice(f"{first_error}; using {path} instead")
    return path


def fixed_plan_active() -> bool:
    """True if the fixed-plan library built from this checkout's source is loaded in this process."""
    try:
        loaded = ctypes.c_char_p(ctypes.addressof(ctypes.c_char.in_dll(ctypes.CDLL(None), MARKER))).value
    except ValueError:
        return False
    return loaded == _source_digest().encode()


def faked_clock_reads() -> int:
    """How many clock reads the library answered from the fake clock in this process (0 if not loaded).

    Only concrete-fft's plan measurements should be among them: the replay test bounds the count."""
    try:
        return ctypes.c_ulong.in_dll(ctypes.CDLL(None), FAKES).value
    except ValueError:
        return 0


def require_fixed_plan() -> None:
    """Raise unless evaluations in this process are byte-identical to every other process's."""
    if not fixed_plan_active():
        raise FheRuntimeError(
            "FHE evaluation needs the fixed FFT plan so that every process computes byte-identical outputs: "
            "run through `repo-market` (it preloads it), or start Python with "
            f"LD_PRELOAD={library_path()} (build it with `python -m crypto.fhe_runtime`)")


def environment_with_fixed_plan(env: dict[str, str] | None = None, notice=None) -> dict[str, str]:
    """A copy of ``env`` (default: this process's) whose ``LD_PRELOAD`` starts with the library
    (``notice``: see :func:`build_library`)."""
    env = dict(os.environ if env is None else env)
    lib = str(build_library(notice))
    if any(c in lib for c in " :"):
        raise FheRuntimeError(f"{lib}: LD_PRELOAD cannot hold a path with a space or a colon")
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p != lib]
    env["LD_PRELOAD"] = " ".join([lib, *preload])
    return env


def _own_command_line() -> list[str]:
    """This process's exact argv (``python -m pkg.mod args`` included), from ``/proc``."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return [sys.executable, *sys.argv]
    args = [os.fsdecode(part) for part in raw.split(b"\0")[:-1]]  # keeps empty arguments; any bytes
    return args or [sys.executable, *sys.argv]


def reexec_with_fixed_plan(notice=None) -> None:
    """Replace this process by the same command with the library preloaded, unless it already is.

    Call before anything is printed, opened or started (it is the first thing the CLI does). Raises
    :class:`FheRuntimeError` if the library is still absent after a re-exec (e.g. a loader that ignores
    ``LD_PRELOAD``) instead of looping. ``notice`` gets a one-line notice if the library had to be built in
    the fallback folder."""
    if fixed_plan_active():
        os.environ.pop(_REEXEC_FLAG, None)  # children start from a clean slate
        return
    if os.environ.get(_REEXEC_FLAG):
        raise FheRuntimeError(f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r} did not load the fixed FFT plan "
                              f"library built from {SOURCE}")
    env = environment_with_fixed_plan(notice=notice)
    env[_REEXEC_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, _own_command_line(), env)
    except OSError as exc:
        raise FheRuntimeError(f"cannot restart {sys.executable} with the fixed FFT plan preloaded: {exc}") from exc


if __name__ == "__main__":
    print(build_library())
