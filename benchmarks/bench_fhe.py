"""Benchmark of the selection circuit in real TFHE (concrete-python): cost report per compiled circuit.

Each configuration (grid N, parameter strategy) runs in its own subprocess so the peak
memory (``ru_maxrss``) is that configuration's: compile, key generation, encryption of both reports,
encrypted evaluation (``--runs`` times, the first output is compared byte for byte with every replay),
decryption, and a check against the plaintext reference :func:`market.selection.select_equilibrium`.

    .venv/bin/python benchmarks/bench_fhe.py --grids 8 16 32
    .venv/bin/python benchmarks/bench_fhe.py --grids 4 8 --strategies mono multi

Only formulation "radix" is shipped; the JSON keeps the records of the removed formulations (tournament,
pairwise, limbs) marked ``"historic": true`` (measured before their removal, not re-run).

Writes ``bench-results/bench_fhe.json`` (one record per configuration, machine info) and prints a table.
Targets (issue 4): 10-bit offsets, N = 16 <= 10 s and N = 32 <= 30 s of evaluation on 2 cores, evaluation
keys <= 1 GB, peak memory <= 8 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cases(grid: int, count: int, seed: int):
    """Valid strictly monotone report pairs (offsets), hurdles that sometimes bite, one invalid pair."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        b = np.sort(rng.choice(1024, grid + 1, replace=False))
        a = np.sort(rng.choice(1024, grid + 1, replace=False))[::-1]
        out.append((b.tolist(), a.tolist(), int(rng.integers(0, 40)), int(rng.integers(0, 40))))
    bad_b = list(range(grid + 1))
    bad_b[1], bad_b[2] = bad_b[2], bad_b[1]
    out.append((bad_b, list(range(1000, 1000 - grid - 1, -1)), 0, 0))
    return out


def run_one(grid: int, formulation: str, strategy: str, runs: int, cases: int) -> dict:
    """One configuration, in this process (called in a subprocess by :func:`main`); keys are deleted after."""
    work = Path(tempfile.mkdtemp(prefix="bench-fhe-"))
    try:
        return _measure(work, grid, formulation, strategy, runs, cases)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a keyset is hundreds of MB


def _measure(work: Path, grid: int, formulation: str, strategy: str, runs: int, cases: int) -> dict:
    import numpy as np

    from crypto.circuit import SelectionCircuit, peak_rss_bytes
    from crypto.fhe_keys import CustodianFheKeys
    from market.schedules import make_schedules
    from market.selection import select_equilibrium
    from market.terms import MarketTerms

    base = 100
    load_before = os.getloadavg()[0]
    terms = MarketTerms(grid=grid, base_rate=base, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    started = time.perf_counter()
    circuit = SelectionCircuit.for_terms(terms, work / "circuits", formulation=formulation, strategy=strategy)
    t_compile = time.perf_counter() - started
    started = time.perf_counter()
    keys = CustodianFheKeys.generate(circuit, work / "custodian")
    t_keygen = time.perf_counter() - started
    evaluation_keys = keys.evaluation_keys_bytes()
    enc, run, dec, correct, replay_identical = [], [], [], 0, True
    ct_sizes = {}
    for k, (b, a, hm, hr) in enumerate(_cases(grid, cases, seed=grid)):
        started = time.perf_counter()
        ct_mm = keys.encrypt_mm(b, hm)
        ct_rm = keys.encrypt_rm(a, hr)
        enc.append(time.perf_counter() - started)
        outputs = []
        for _ in range(runs if k == 0 else 1):
            started = time.perf_counter()
            outputs.append(circuit.evaluate(evaluation_keys, ct_mm, ct_rm))
            run.append(time.perf_counter() - started)
            print(f"  N={grid} {formulation}/{strategy}: run {len(run)} {run[-1]:.1f} s", file=sys.stderr, flush=True)
        replay_identical &= all(o == outputs[0] for o in outputs)
        started = time.perf_counter()
        got = keys.decrypt_output(outputs[0])
        dec.append(time.perf_counter() - started)
        strict = bool(np.all(np.diff(b) > 0) and np.all(np.diff(a) < 0))
        if strict:
            ref = select_equilibrium(make_schedules(np.array(b) + base, np.array(a) + base), hm, hr, "margin")
            correct += int(got.instruction(terms) == ref and not got.invalid)
        else:
            correct += int(got.invalid and not got.trade)
        ct_sizes = {"ciphertext_mm": len(ct_mm), "ciphertext_rm": len(ct_rm), "ciphertext_out": len(outputs[0])}
    report = circuit.cost_report().as_dict()
    report["timings"] = {
        "compile": t_compile,
        "keygen": t_keygen,
        "encrypt_mean": sum(enc) / len(enc),
        "evaluate_mean": sum(run) / len(run),
        "evaluate_min": min(run),
        "evaluate_max": max(run),
        "decrypt_mean": sum(dec) / len(dec),
    }
    report["sizes"] = {"evaluation_keys": len(evaluation_keys), **ct_sizes}
    report["cases"] = len(dec)
    report["correct"] = correct
    report["replay_byte_identical"] = replay_identical
    report["peak_rss_bytes"] = peak_rss_bytes()
    # the machine may be shared: a 1-minute load average above the core count inflates every timing
    report["load_average_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    from crypto.fhe_runtime import fixed_plan_active

    report["fixed_fft_plan"] = fixed_plan_active()  # the protocol evaluates under the fixed plan (replay)
    return report


def main(argv=None) -> int:
    from crypto.fhe_runtime import reexec_with_fixed_plan

    reexec_with_fixed_plan()  # measure what the protocol runs: every evaluation under the fixed FFT plan
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[8, 16, 32])
    from crypto.circuit import DEFAULT_FORMULATION  # no concrete import

    parser.add_argument("--strategies", nargs="+", default=["mono"], choices=["mono", "multi"])
    parser.add_argument("--runs", type=int, default=2, help="evaluations of the first case (replay check)")
    parser.add_argument("--cases", type=int, default=2, help="random valid report pairs per configuration (+1 invalid)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_fhe.json")
    parser.add_argument("--one", nargs=3, metavar=("N", "FORMULATION", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.one[2], args.runs, args.cases)))
        return 0
    records = json.loads(args.out.read_text())["records"] if args.out.exists() else []
    for r in records:  # the removed formulations' figures stay, marked as such
        if r.get("formulation") != DEFAULT_FORMULATION:
            r["historic"] = True
    for grid in args.grids:
        for formulation in (DEFAULT_FORMULATION,):
            for strategy in args.strategies:
                print(f"N={grid} {formulation}/{strategy} …", file=sys.stderr, flush=True)
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", str(grid), formulation, strategy,
                     "--runs", str(args.runs), "--cases", str(args.cases)],
                    capture_output=True, text=True, cwd=ROOT,
                )
                if proc.returncode != 0:
                    tail = "\n".join(l for l in proc.stderr.splitlines() if "WARNING" not in l)[-2000:]
                    print(f"  failed:\n{tail}", file=sys.stderr)
                    record = {"grid": grid, "formulation": formulation, "strategy": strategy, "error": tail[-500:]}
                else:
                    record = json.loads(proc.stdout.strip().splitlines()[-1])
                records = [r for r in records if (r["grid"], r["formulation"], r.get("strategy")) !=
                           (grid, formulation, strategy)] + [record]
                args.out.parent.mkdir(parents=True, exist_ok=True)
                doc = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "python": platform.python_version()},
                       "records": sorted(records, key=lambda r: (r["formulation"], r.get("strategy", ""), r["grid"]))}
                args.out.write_text(json.dumps(doc, indent=1))
    _table(json.loads(args.out.read_text())["records"])
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _table(records) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="selection circuit, real TFHE (10-bit offsets, margin mode)")
    for col in ("N", "formulation", "strategy", "PBS", "compile s", "keygen s", "evaluate s", "eval keys MB",
                "ct in KB", "peak GB", "correct", "replay"):
        table.add_column(col, justify="right")
    for r in records:
        if "error" in r:
            table.add_row(str(r["grid"]), r["formulation"], r.get("strategy", ""), "error", *[""] * 8)
            continue
        t = r["timings"]
        table.add_row(
            str(r["grid"]), r["formulation"], r["strategy"], str(r["pbs_count"]), f"{t['compile']:.0f}",
            f"{t['keygen']:.1f}", f"{t['evaluate_mean']:.1f}", f"{r['sizes']['evaluation_keys'] / 1e6:.0f}",
            f"{r['sizes']['ciphertext_mm'] / 1e3:.0f}", f"{r['peak_rss_bytes'] / 1e9:.2f}",
            f"{r['correct']}/{r['cases']}", "yes" if r["replay_byte_identical"] else "NO",
        )
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
