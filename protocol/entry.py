"""The ``repo-market`` process: ``python -m protocol`` and the installed script start here.

Every FHE evaluation runs under the fixed FFT plan (crypto/fhe_runtime.py), which needs a restart of the process
with the plan's library preloaded. The restart comes first, before the command line and its libraries (web3,
eth_account, numpy, cryptography) are imported: restarting after importing them would load them twice.
"""
from __future__ import annotations

import sys

from crypto.fhe_runtime import FheRuntimeError, reexec_with_fixed_plan

__all__ = ["main", "preload_fixed_fft_plan"]


def preload_fixed_fft_plan() -> None:
    """Restart this process with the fixed FFT plan preloaded, so every FHE evaluation it runs is byte-identical
    to any other process's -- the auditor's replay depends on it. A no-op once preloaded. Commands that never
    evaluate still work if the plan library cannot be built; an evaluation then fails with the reason."""
    def warn(message: str) -> None:
        print(f"repo-market: warning: {' '.join(str(message).split())}", file=sys.stderr)

    try:
        reexec_with_fixed_plan(notice=warn)
    except FheRuntimeError as exc:
        warn(str(exc))
    except Exception as exc:  # noqa: BLE001 -- the environment (a full disk, a broken /tmp) must not stop us here
        warn(f"cannot load the fixed FFT plan library: {type(exc).__name__}: {exc}")


def main() -> int:
    """Restart with the fixed plan, then run the command line (exit status of the command)."""
    preload_fixed_fft_plan()
    from protocol.cli import main as run_command_line  # after the restart, on purpose: see the module docstring

    return run_command_line()
