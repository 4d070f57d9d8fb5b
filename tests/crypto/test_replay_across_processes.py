"""Replay across processes: fresh processes evaluating the same public blobs produce
byte-identical outputs, because every evaluation runs under the fixed FFT plan (crypto/fhe_runtime.py).

Without it, concrete's per-process FFT-plan timing made six concurrent processes produce five distinct
outputs; the processes here run concurrently on purpose, the situation in which timed plans diverge.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from crypto.encoding import digest
from crypto.fhe_runtime import (
    FheRuntimeError,
    environment_with_fixed_plan,
    faked_clock_reads,
    fixed_plan_active,
    library_path,
    require_fixed_plan,
)

# Fake clock reads allowed per process: concrete-fft's plan measurements only (measured: 24 for one polynomial
# size, unchanged by further evaluations); a runtime that starts reading the clock on the evaluation path
# (timed waits) or a shim that no longer intercepts anything fails the bounds.
MAX_FAKED_READS = 200

EVALUATE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from crypto.circuit import SelectionCircuit
    from crypto.encoding import digest
    from market.terms import MarketTerms
    work = Path(sys.argv[1])
    terms = MarketTerms(**json.loads((work / "terms.json").read_text()))
    circuit = SelectionCircuit.for_terms(terms, work / "circuits")
    out = circuit.evaluate(*((work / name).read_bytes() for name in ("keys", "mm", "rm")))
    from crypto.fhe_runtime import faked_clock_reads
    print(json.dumps({"digest": digest(out).hex(), "faked": faked_clock_reads()}))
""")


def _without_fixed_plan() -> dict[str, str]:
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(p for p in env.get("LD_PRELOAD", "").split() if "fixed_fft_plan" not in p)
    env.pop("REPO_MARKET_FIXED_FFT_PLAN_REEXEC", None)
    return env


def test_the_suite_runs_under_the_fixed_plan():
    assert fixed_plan_active()
    require_fixed_plan()  # does not raise


def test_a_process_without_the_fixed_plan_refuses_to_evaluate():
    code = "from crypto.fhe_runtime import require_fixed_plan; require_fixed_plan()"
    done = subprocess.run([sys.executable, "-c", code], env=_without_fixed_plan(), capture_output=True, text=True)
    assert done.returncode != 0
    assert "FheRuntimeError" in done.stderr and "fixed FFT plan" in done.stderr
    assert str(library_path()) in done.stderr


def test_python_clocks_stay_real_under_the_fixed_plan():
    """Only callers inside concrete's runtime library see the tied clock; Python's own timings are real."""
    code = "import time; t = time.perf_counter(); time.sleep(0.2); print(time.perf_counter() - t, time.monotonic())"
    done = subprocess.run([sys.executable, "-c", code], env=environment_with_fixed_plan(),
                          capture_output=True, text=True, check=True)
    elapsed, monotonic = (float(x) for x in done.stdout.split())
    assert 0.19 <= elapsed < 1.0
    # the fake clock only ever returns whole seconds
    assert elapsed != int(elapsed) and monotonic != int(monotonic)


def test_environment_with_fixed_plan_keeps_other_preloads_once():
    env = environment_with_fixed_plan({"LD_PRELOAD": f"/x/other.so {library_path()}:/y/third.so"})
    assert env["LD_PRELOAD"].split() == [str(library_path()), "/x/other.so", "/y/third.so"]


@pytest.fixture(scope="module")
def published(tmp_path_factory, fhe_terms, fhe_cache, selection_circuit, custodian_keys, evaluation_keys):
    """The public blobs of one evaluation, in a folder a fresh process can read."""
    work = tmp_path_factory.mktemp("replay")
    (work / "terms.json").write_text(json.dumps(fhe_terms.as_dict()))
    os.symlink(fhe_cache, work / "circuits")
    from crypto.circuit import report_digits
    from tests.crypto.owner_inputs import import_buffer

    public_key = custodian_keys.public_key_bytes()
    ct_mm = import_buffer(public_key, report_digits(selection_circuit.shape, "mm", [0, 10, 20, 30], 3))
    ct_rm = import_buffer(public_key, report_digits(selection_circuit.shape, "rm", [90, 80, 70, 60], 5))
    for name, blob in (("keys", evaluation_keys), ("mm", ct_mm), ("rm", ct_rm)):
        (work / name).write_bytes(blob)
    in_process = selection_circuit.evaluate(evaluation_keys, ct_mm, ct_rm)
    return work, digest(in_process).hex()


def test_concurrent_fresh_processes_reproduce_the_output_byte_for_byte(published):
    work, expected = published
    env = environment_with_fixed_plan()
    procs = [subprocess.Popen([sys.executable, "-c", EVALUATE, str(work)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.splitlines()[-1]))
    assert [r["digest"] for r in results] == [expected, expected]
    # the shim really answered concrete-fft's plan timing, and nothing on the evaluation path
    assert all(0 < r["faked"] <= MAX_FAKED_READS for r in results), results
    # this process compiled and ran circuits of several sizes in the session: each size adds its plan reads
    assert faked_clock_reads() > 0


def test_require_fixed_plan_names_the_library(monkeypatch):
    import crypto.fhe_runtime as runtime

    monkeypatch.setattr(runtime, "fixed_plan_active", lambda: False)
    with pytest.raises(FheRuntimeError, match="LD_PRELOAD="):
        runtime.require_fixed_plan()


def test_repo_market_restarts_itself_under_the_fixed_plan():
    """`repo-market` (protocol.entry.main) re-executes its own command line with the library preloaded."""
    code = ("from protocol.entry import preload_fixed_fft_plan; preload_fixed_fft_plan(); "
            "from crypto.fhe_runtime import fixed_plan_active; import os; "
            "print(fixed_plan_active(), 'REPO_MARKET_FIXED_FFT_PLAN_REEXEC' in os.environ)")
    done = subprocess.run([sys.executable, "-c", code], env=_without_fixed_plan(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_the_restart_comes_before_the_command_line_is_imported():
    """The entry module imports no chain or web3 library: the restart happens before them, so a process loads
    them once."""
    code = ("import sys, protocol.entry; "
            "print(sorted(m for m in ('web3', 'eth_account', 'chain', 'protocol.cli', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_build_failures_are_clear_errors(monkeypatch, tmp_path):
    import crypto.fhe_runtime as runtime

    monkeypatch.setattr(runtime, "library_path", lambda: tmp_path / "lib" / "libfixed_fft_plan-test.so")
    monkeypatch.setattr(runtime, "fallback_dir", lambda: tmp_path / "fallback")
    monkeypatch.setenv("CC", "/nonexistent/cc -v")
    with pytest.raises(FheRuntimeError, match="cannot build the fixed FFT plan library.*; fallback: cannot build"):
        runtime.build_library()
    assert not any((tmp_path / "lib").iterdir())  # no half-built file left behind
    assert not any((tmp_path / "fallback").iterdir())


def test_an_unusable_cache_falls_back_to_a_private_folder_with_one_notice(monkeypatch, tmp_path):
    """The cache path lies under a regular file (NotADirectoryError, whoever runs the test): the library is
    built in the fallback folder, 0700, and the notice names both places."""
    import crypto.fhe_runtime as runtime

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(runtime, "library_path", lambda: blocker / "repo-market" / "libfixed_fft_plan-test.so")
    monkeypatch.setattr(runtime, "fallback_dir", lambda: tmp_path / "fallback")
    notices: list[str] = []
    path = runtime.build_library(notices.append)
    assert path.parent == tmp_path / "fallback" and path.is_file()
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert len(notices) == 1 and str(blocker) in notices[0] and f"using {path} instead" in notices[0]
    assert runtime.build_library(notices.append) == path  # built once; the next call finds it
    env = runtime.environment_with_fixed_plan({"LD_PRELOAD": ""})
    assert env["LD_PRELOAD"] == str(path)


def test_a_foreign_or_writable_library_is_refused(monkeypatch, tmp_path):
    import crypto.fhe_runtime as runtime

    target = tmp_path / "libfixed_fft_plan-test.so"
    target.write_bytes(b"not ours")
    target.chmod(0o666)
    monkeypatch.setattr(runtime, "library_path", lambda: target)
    with pytest.raises(FheRuntimeError, match="must belong to this user and not be group/world-writable"):
        runtime.build_library()


def test_restart_keeps_the_exact_command_line():
    code = "from crypto.fhe_runtime import _own_command_line; print(repr(_own_command_line()[-3:]))"
    done = subprocess.run([sys.executable, "-c", code, "", "--label", ""], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == repr(["", "--label", ""])
