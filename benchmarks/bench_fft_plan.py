"""What the fixed FFT plan costs: CPU time per PBS with the plan fixed (crypto/fixed_fft_plan.c preloaded)
against concrete's own timed pick, on the same circuit of independent 4-bit lookups.

Each variant runs in its own process (the plan is chosen once per process): it compiles the circuit, makes
keys, then evaluates ``--runs`` times and keeps the best CPU time of the evaluation. The variants alternate
``--rounds`` times, so that a change in the machine's load hits both. Usage:
.venv/bin/python benchmarks/bench_fft_plan.py [--lookups 400] [--runs 3] [--rounds 2] [--out FILE]
Writes JSON (default bench-results/bench_fft_plan.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from crypto.fhe_runtime import environment_with_fixed_plan, fixed_plan_active  # noqa: E402


def measure(lookups: int, runs: int) -> dict:
    """In this process: best CPU seconds of ``runs`` evaluations of ``lookups`` 4-bit lookups."""
    from concrete import fhe

    table = fhe.LookupTable([(7 * v + 3) % 16 for v in range(16)])

    def circuit(x):
        return table[x]

    compiled = fhe.Compiler(circuit, {"x": "encrypted"}).compile(
        [np.arange(lookups) % 16, (np.arange(lookups) * 5) % 16],
        fhe.Configuration(parameter_selection_strategy="mono", show_progress=False))
    compiled.keygen(seed=1)
    x = np.arange(lookups) % 16
    encrypted = compiled.encrypt(x)
    cpu = []
    for _ in range(runs):
        start = time.process_time()
        out = compiled.run(encrypted)
        cpu.append(time.process_time() - start)
    if not np.array_equal(compiled.decrypt(out), (7 * x + 3) % 16):
        raise SystemExit("bench_fft_plan: wrong decryption")
    pbs = int(compiled.programmable_bootstrap_count)
    return {"fixed_plan_loaded": fixed_plan_active(), "pbs": pbs, "cpu_s": cpu,
            "best_cpu_ms_per_pbs": min(cpu) / pbs * 1000}


def _variant(name: str, lookups: int, runs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if name == "fixed":
        env = environment_with_fixed_plan(env)
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--worker", str(lookups), str(runs)], env=env, check=True,
                          capture_output=True, text=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    if record["fixed_plan_loaded"] != (name == "fixed"):
        raise SystemExit(f"bench_fft_plan: variant {name} ran with fixed_plan_loaded={record['fixed_plan_loaded']}")
    print(f"  {name}: {record['best_cpu_ms_per_pbs']:.2f} ms CPU per PBS (load {load:.1f})", file=sys.stderr,
          flush=True)
    return record | {"load_average_1m": load}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]))))
        os._exit(0)  # concrete's teardown would replace the exit status (see tests/conftest.py)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_fft_plan.json")
    args = parser.parse_args()
    samples = {"fixed": [], "timed": []}
    for _ in range(args.rounds):
        for name in ("fixed", "timed"):
            samples[name].append(_variant(name, args.lookups, args.runs))
    best = {name: min(r["best_cpu_ms_per_pbs"] for r in records) for name, records in samples.items()}
    doc = {
        "machine": machine(),
        "lookups": args.lookups, "runs": args.runs, "rounds": args.rounds, "samples": samples,
        "best_cpu_ms_per_pbs": best, "fixed_over_timed": best["fixed"] / best["timed"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"fixed plan {best['fixed']:.2f} ms, timed pick {best['timed']:.2f} ms CPU per PBS "
          f"({doc['fixed_over_timed']:.3f}x), best of {args.runs} runs x {args.rounds} rounds")


if __name__ == "__main__":
    main()
