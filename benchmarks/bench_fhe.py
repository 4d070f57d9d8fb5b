"""Benchmark of the selection circuit in real TFHE (concrete-python): cost report per compiled circuit.

Each configuration (grid N, parameter strategy) runs in its own subprocess so the peak
memory (``ru_maxrss``) is that configuration's: compile, key generation, encryption of both reports,
encrypted evaluation (``--runs`` times, the first output is compared byte for byte with every replay),
decryption, and a check against the plaintext reference :func:`market.selection.select_equilibrium`.

    .venv/bin/python benchmarks/bench_fhe.py --grids 8 16 32
    .venv/bin/python benchmarks/bench_fhe.py --grids 4 8 --strategies mono multi
    .venv/bin/python benchmarks/bench_fhe.py --cost-only --grids 8 16 32   # compile only: PBS per step

    .venv/bin/python benchmarks/bench_fhe.py --owner-vs-mono --compare-before ad0d5a8 --grids 8 16   # owner-encrypted vs mono

Why one file over 500 lines: its modes (timed records, old vs new, cost only, owner-encrypted vs mono) write
sections of the same JSON from the same measurement helpers; split, each would re-import them from the others.

Only formulation "radix" is shipped; the JSON keeps the records of the removed formulations (tournament,
pairwise, limbs) marked ``"historic": true`` (measured before their removal, not re-run).

Writes ``bench-results/bench_fhe.json`` (one record per configuration, machine info) and prints a table;
``--cost-only`` compiles each grid (no keys, no evaluation) and writes its static cost, PBS per step of the
rule (``fhe.tag``) and graph digests under ``"pbs_per_step"``, leaving every timed record as it is.
Targets [decided]: 10-bit offsets, N = 16 <= 10 s and N = 32 <= 30 s of evaluation on 2 cores, evaluation
keys <= 1 GB, peak memory <= 8 GB.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from common.vocabulary import SIDES  # noqa: E402
from crypto.circuit import RULE_VERSION, SelectionCircuit, peak_rss_bytes, report_digits, unwrap_blob  # noqa: E402
from crypto.circuit.compiled import graph_fingerprint  # noqa: E402
from crypto.fhe_keys import CustodianFheKeys  # noqa: E402
from crypto.fhe_runtime import fixed_plan_active, reexec_with_fixed_plan  # noqa: E402
from crypto.tfhers import encrypt_unproven_digits, expand_unproven_digits  # noqa: E402
from market.schedules import make_schedules  # noqa: E402
from market.selection import select_equilibrium  # noqa: E402
from market.terms import MarketTerms  # noqa: E402
import crypto.circuit as new_module  # noqa: E402
import crypto.circuit.compiled as compiled_module  # noqa: E402


def bench_terms(grid: int):
    """The benchmark's market terms: 10-bit offsets, 8-bit hurdles, margin mode."""
    return MarketTerms(grid=grid, base_rate=100, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")


def _cases(grid: int, count: int, seed: int):
    """Valid strictly monotone report pairs (offsets), hurdles that sometimes bite, one invalid pair."""
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


def import_buffer(public_key: bytes, digits) -> bytes:
    """A dealer's digits as an evaluator imports them: an unproven compact list under the market's public key,
    expanded (what crypto.tfhers' open path hands the circuit)."""
    return expand_unproven_digits(encrypt_unproven_digits(public_key, digits), len(digits))


def _timed(step, *args, **kwargs) -> tuple:
    """``(step(*args, **kwargs), seconds it took)``."""
    started = time.perf_counter()
    result = step(*args, **kwargs)
    return result, time.perf_counter() - started


def owner_circuit_and_keys(terms, work: Path, **options) -> tuple:
    """This tree's circuit (tfhers inputs: each dealer encrypts its own report) compiled into ``work`` and the
    custodian's keys generated: ``(circuit, keys, compile seconds, keygen seconds)``."""
    circuit, compile_s = _timed(SelectionCircuit.for_terms, terms, work / "circuits", **options)
    keys, keygen_s = _timed(CustodianFheKeys.generate, circuit, work / "custodian")
    return circuit, keys, compile_s, keygen_s


def native_circuit_and_keys(module, shape) -> tuple:
    """An earlier commit's circuit (``module``: native inputs, the custodian encrypts) compiled and keyed in
    this process: ``(compiled, compile seconds, keygen seconds)``."""
    compiled, compile_s = _timed(module._compile, shape, simulation=False)
    _, keygen_s = _timed(compiled.keygen, force=True)
    return compiled, compile_s, keygen_s


def _timed_evaluation(record: dict, label: str, evaluate, decode, want, loads: list) -> None:
    """One timed evaluation into ``record["eval"]``, its decoded output checked against ``want``."""
    result, seconds = _timed(evaluate)
    record["eval"].append(seconds)
    record["correct"] += int(decode(result) == want)
    loads.append(os.getloadavg()[0])
    print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)


def _spread(times: list) -> dict:
    return {"mean": sum(times) / len(times), "min": min(times), "max": max(times), "all": times}


def run_one(grid: int, strategy: str, runs: int, cases: int) -> dict:
    """One configuration, in this process (called in a subprocess by :func:`main`); keys are deleted after."""
    work = Path(tempfile.mkdtemp(prefix="bench-fhe-"))
    try:
        return _measure(work, grid, strategy, runs, cases)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a keyset is hundreds of MB


def _measure(work: Path, grid: int, strategy: str, runs: int, cases: int) -> dict:
    load_before = os.getloadavg()[0]
    terms = bench_terms(grid)
    base = terms.base_rate
    circuit, keys, t_compile, t_keygen = owner_circuit_and_keys(terms, work, strategy=strategy)
    evaluation_keys = keys.evaluation_keys_bytes()
    enc, run, dec, correct, replay_identical = [], [], [], 0, True
    ct_sizes = {}
    for k, (b, a, hm, hr) in enumerate(_cases(grid, cases, seed=grid)):
        started = time.perf_counter()  # the dealers' side: digits, compact-public-key encryption, expansion
        ct_mm = import_buffer(keys.public_key_bytes(), report_digits(circuit.shape, "mm", b, hm))
        ct_rm = import_buffer(keys.public_key_bytes(), report_digits(circuit.shape, "rm", a, hr))
        enc.append(time.perf_counter() - started)
        outputs = []
        for _ in range(runs if k == 0 else 1):
            started = time.perf_counter()
            outputs.append(circuit.evaluate(evaluation_keys, ct_mm, ct_rm))
            run.append(time.perf_counter() - started)
            print(f"  N={grid} {strategy}: run {len(run)} {run[-1]:.1f} s", file=sys.stderr, flush=True)
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

    report["fixed_fft_plan"] = fixed_plan_active()  # the protocol evaluates under the fixed plan (replay)
    return report


def _load_circuit_module(commit: str):
    """``crypto/circuit.py`` as it was at ``commit`` (git show), imported as a module of its own."""
    source = subprocess.run(["git", "show", f"{commit}:crypto/circuit.py"], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="bench-old-circuit-"))
    path = folder / f"circuit_{commit[:12]}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _flat_case(grid: int, seed: int):
    """A weakly monotone report pair with runs of equal values (offsets) and small hurdles."""
    rng = np.random.default_rng(seed)
    b = np.concatenate([[0], np.cumsum(np.where(rng.random(grid) < 0.4, 0, rng.integers(1, 20, grid)))])
    a = 1000 - np.concatenate([[0], np.cumsum(np.where(rng.random(grid) < 0.4, 0, rng.integers(1, 20, grid)))])
    return b.tolist(), a.tolist(), int(rng.integers(0, 20)), int(rng.integers(0, 20))


def compare_one(grid: int, before: str, runs: int) -> dict:
    """Today's circuit (``before``, a commit) and this tree's, compiled, keyed and evaluated in ONE process,
    evaluations interleaved (old, new, old, new, ...) on the same strictly monotone reports, then the new
    circuit on reports with flat steps; every output decrypted and checked against the plaintext reference.
    Both sides run the same concrete calls (Client/Server), so the ratio is the circuits', not the wrappers'."""
    old_module = _load_circuit_module(before)
    terms = bench_terms(grid)
    loads = [os.getloadavg()[0]]
    sides = {}
    for name, module in (("old", old_module), ("new", new_module)):
        shape = module.CircuitShape.from_terms(terms)
        compiled, t_compile, t_keygen = native_circuit_and_keys(module, shape)
        sides[name] = {"module": module, "shape": shape, "compiled": compiled, "eval": [], "flat_eval": [],
                       "record": {"pbs_count": int(compiled.programmable_bootstrap_count),
                                  "pbs_per_tag": {k: int(v) for k, v in
                                                  compiled.programmable_bootstrap_count_per_tag.items()},
                                  "max_integer_bits": int(compiled.graph.maximum_integer_bit_width()),
                                  "compile_s": t_compile, "keygen_s": t_keygen,
                                  "evaluation_key_bytes": len(compiled.keys.evaluation.serialize()),
                                  "correct": 0, "cases": 0}}
        loads.append(os.getloadavg()[0])
    strict = _cases(grid, 1, seed=grid)[0]
    flat = _flat_case(grid, seed=grid)

    def evaluate(side: dict, case, key: str) -> None:
        b, a, hm, hr = case
        module, shape, compiled = side["module"], side["shape"], side["compiled"]
        args = (module.pack_report(shape, "mm", b, hm), module.pack_report(shape, "rm", a, hr))
        encrypted = compiled.encrypt(*args)
        started = time.perf_counter()
        result = compiled.run(*encrypted)
        side[key].append(time.perf_counter() - started)
        got = module.SelectionOutput.from_values(compiled.decrypt(result)).instruction(terms)
        want = select_equilibrium(make_schedules(np.array(b) + 100, np.array(a) + 100), hm, hr, "margin")
        side["record"]["cases"] += 1
        side["record"]["correct"] += int(got == want)
        loads.append(os.getloadavg()[0])
        print(f"  N={grid} {key} {'old' if module is old_module else 'new'}: {side[key][-1]:.1f} s",
              file=sys.stderr, flush=True)

    for _ in range(runs):  # interleaved: the machine's load hits both alike
        evaluate(sides["old"], strict, "eval")
        evaluate(sides["new"], strict, "eval")
    for _ in range(max(1, runs - 1)):
        evaluate(sides["new"], flat, "flat_eval")
    out = {"grid": grid, "before_commit": before, "runs": runs,
           "load_average_1m": {"min": min(loads), "max": max(loads), "samples": loads},
           "peak_rss_bytes_both_circuits": peak_rss_bytes()}
    for name in ("old", "new"):
        rec = sides[name]["record"]
        rec["evaluate_strict"] = _spread(sides[name]["eval"])
        if sides[name]["flat_eval"]:
            rec["evaluate_flat"] = _spread(sides[name]["flat_eval"])
        out[name] = rec
    out["ratio_new_over_old_strict_mean"] = out["new"]["evaluate_strict"]["mean"] / out["old"]["evaluate_strict"]["mean"]
    out["ratio_new_over_old_pbs"] = out["new"]["pbs_count"] / out["old"]["pbs_count"]
    return out


def _load_circuit_package(commit: str):
    """The package ``crypto/circuit/`` as it was at ``commit`` (git show), imported under a name of its own
    (its absolute imports of ``crypto.circuit.*`` rewritten to that name)."""
    name = f"circuit_{commit[:12]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-old-circuit-")) / name
    folder.mkdir()
    files = subprocess.run(["git", "ls-tree", "--name-only", f"{commit}:crypto/circuit/"], capture_output=True,
                           text=True, cwd=ROOT, check=True).stdout.split()
    for file in files:
        source = subprocess.run(["git", "show", f"{commit}:crypto/circuit/{file}"], capture_output=True, text=True,
                                cwd=ROOT, check=True).stdout
        (folder / file).write_text(source.replace("crypto.circuit.", f"{name}.").replace("crypto.circuit ", f"{name} "))
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(name)


def owner_vs_mono_one(grid: int, before: str, runs: int, levers: dict, full_evaluate: bool = False) -> dict:
    """Today's circuit (``before``: custodian-encrypted native inputs, mono parameters) and this tree's owner-
    encrypted one (tfhers inputs, multi parameters, the no-cut test in the circuit) compiled, keyed and evaluated
    in ONE process, evaluations interleaved (old, new, old, new, ...) on the same report pair; every output
    decrypted and checked against the plaintext reference. The new side's time is ``server.run`` on imported
    values with deserialized keys (what the old side's ``run`` measures too); one full ``evaluate`` (keys blob
    and imports included) is recorded apart when ``full_evaluate`` (replay is tested in tests/crypto).
    ``levers``: extra fhe.Configuration options of the new circuit."""
    from concrete import fhe

    compiled_module.CONFIGURATION_LEVERS.update(levers)
    old_module = _load_circuit_package(before)
    terms = bench_terms(grid)
    loads = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="bench-owner-"))
    b, a, hm, hr = _cases(grid, 1, seed=grid)[0]
    want = select_equilibrium(make_schedules(np.array(b) + 100, np.array(a) + 100), hm, hr, "margin")
    try:
        shape = old_module.CircuitShape.from_terms(terms)
        old, old_compile, old_keygen = native_circuit_and_keys(old_module, shape)
        old_args = old.encrypt(old_module.pack_report(shape, "mm", b, hm), old_module.pack_report(shape, "rm", a, hr))
        old_rec = {"pbs_count": int(old.programmable_bootstrap_count), "compile_s": old_compile,
                   "keygen_s": old_keygen, "evaluation_key_bytes": len(old.keys.evaluation.serialize()),
                   "complexity": float(old.complexity), "eval": [], "correct": 0}
        loads.append(os.getloadavg()[0])
        circuit, keys, new_compile, new_keygen = owner_circuit_and_keys(terms, work)
        evaluation_keys = keys.evaluation_keys_bytes()
        started = time.perf_counter()
        imports = [import_buffer(keys.public_key_bytes(), report_digits(circuit.shape, side, offsets, h))
                   for side, offsets, h in (("mm", b, hm), ("rm", a, hr))]
        encrypt_s = time.perf_counter() - started
        cost = circuit.cost_report()
        new_rec = {"pbs_count": cost.pbs_count, "pbs_per_tag": cost.pbs_per_tag, "compile_s": new_compile,
                   "keygen_s": new_keygen, "evaluation_key_bytes": len(evaluation_keys),
                   "bootstrap_key_bytes": cost.bootstrap_key_bytes, "keyswitch_key_bytes": cost.keyswitch_key_bytes,
                   "complexity": cost.complexity, "global_p_error": cost.global_p_error,
                   "dealer_encrypt_both_s": encrypt_s, "import_buffer_bytes": [len(x) for x in imports],
                   "eval": [], "correct": 0}
        loads.append(os.getloadavg()[0])
        eval_keys = fhe.EvaluationKeys.deserialize(unwrap(evaluation_keys))
        values = [circuit.import_digits(side, x) for side, x in zip(SIDES, imports)]
        for _ in range(runs):  # interleaved: the machine's load hits both alike
            _timed_evaluation(old_rec, f"N={grid} old", lambda: old.run(*old_args),
                              lambda result: old_module.SelectionOutput.from_values(old.decrypt(result)).instruction(terms),
                              want, loads)
            _timed_evaluation(new_rec, f"N={grid} new", lambda: circuit.server.run(*values, evaluation_keys=eval_keys),
                              lambda result: keys.decrypt_output(compiled_module.wrap_blob(
                                  "ciphertext_out", result.serialize())).instruction(terms),
                              want, loads)
        if full_evaluate:  # keys blob check and deserialization, imports and run, twice: replay byte for byte
            started = time.perf_counter()
            full = circuit.evaluate(evaluation_keys, *imports)
            new_rec["evaluate_full_s"] = time.perf_counter() - started
            new_rec["replay_byte_identical"] = circuit.evaluate(evaluation_keys, *imports) == full
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for rec in (old_rec, new_rec):
        rec["evaluate"] = _spread(rec.pop("eval"))
    return {"grid": grid, "before_commit": before, "rule": RULE_VERSION, "runs": runs, "levers": levers,
            "load_average_1m": {"min": min(loads), "max": max(loads), "samples": loads},
            "peak_rss_bytes_both_circuits": peak_rss_bytes(),
            "old_mono_custodian_encrypted": old_rec, "new_owner_encrypted": new_rec,
            "ratio_evaluate_mean": new_rec["evaluate"]["mean"] / old_rec["evaluate"]["mean"],
            "ratio_pbs": new_rec["pbs_count"] / old_rec["pbs_count"],
            "ratio_evaluation_keys": new_rec["evaluation_key_bytes"] / old_rec["evaluation_key_bytes"]}


def unwrap(blob: bytes) -> bytes:
    return unwrap_blob("evaluation_keys", blob)


def _child_record(argv: list[str]) -> dict | None:
    """Run this script with ``argv`` in a subprocess (its own peak memory) and return the JSON record it prints
    last, or None (its stderr shown) when it printed none. Only stdout counts: concrete's runtime may end a
    process with any status after it printed its record (tests/conftest.py)."""
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, cwd=ROOT)
    if not proc.stdout.strip():
        print("\n".join(line for line in proc.stderr.splitlines() if "WARNING" not in line)[-3000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _owner_vs_mono(args) -> int:
    """One subprocess per grid and lever set; results under ``"owner_vs_mono"`` in the JSON."""
    doc = json.loads(args.out.read_text()) if args.out.exists() else {"records": []}
    results = doc.get("owner_vs_mono", {}).get("grids", [])
    lever_sets = [json.loads(x) for x in args.levers] or [{}]
    for grid in args.grids:
        for levers in lever_sets:
            print(f"N={grid} owner vs mono {levers} …", file=sys.stderr, flush=True)
            record = _child_record(["--owner-vs-mono-one", str(grid), json.dumps(levers), "--compare-before",
                                    args.compare_before, "--runs", str(args.runs)])
            if record is None:
                return 1
            doc = json.loads(args.out.read_text()) if args.out.exists() else doc  # another run may have written
            results = doc.get("owner_vs_mono", {}).get("grids", [])
            results = [r for r in results if (r["grid"], r["levers"], r["rule"]) !=
                       (grid, record["levers"], record["rule"])] + [record]
            doc["owner_vs_mono"] = {
                "what": "owner encryption: today's circuit (the commit named, custodian-encrypted native inputs, mono "
                        "parameters) against the owner-encrypted one (one tfhers input per dealer, multi "
                        "parameters, the no-cut test computed in the circuit), compiled, keyed and evaluated in one "
                        "process per grid, evaluations interleaved on the same strictly monotone report pair, "
                        "fixed FFT plan, 10-bit offsets, 8-bit hurdles, margin mode. Seconds; load_average_1m "
                        "sampled around every step (2-core machine shared with other jobs). 'levers': the extra "
                        "fhe.Configuration options of the new circuit in that record.",
                "machine": machine(),
                "grids": sorted(results, key=lambda r: (r["grid"], json.dumps(r["levers"]))),
            }
            args.out.write_text(json.dumps(doc, indent=1))
            o, n = record["old_mono_custodian_encrypted"], record["new_owner_encrypted"]
            print(f"N={grid} {levers}: PBS {o['pbs_count']} -> {n['pbs_count']}, evaluate "
                  f"{o['evaluate']['mean']:.1f} -> {n['evaluate']['mean']:.1f} s (x{record['ratio_evaluate_mean']:.2f}),"
                  f" keys {o['evaluation_key_bytes'] / 1e6:.0f} -> {n['evaluation_key_bytes'] / 1e6:.0f} MB, load "
                  f"{record['load_average_1m']['min']:.1f}-{record['load_average_1m']['max']:.1f}",
                  file=sys.stderr, flush=True)
    return 0


def cost_one(grid: int, strategy: str) -> dict:
    """Compile one grid (no keys, no evaluation): its static cost report (PBS per step included) and digests."""
    with tempfile.TemporaryDirectory(prefix="bench-fhe-cost-") as work:
        circuit = SelectionCircuit.for_terms(bench_terms(grid), Path(work), strategy=strategy)
        report = circuit.cost_report().as_dict()
        digests = graph_fingerprint(circuit._compiled)
    for key in ("pbs_count", "pbs_per_tag", "max_integer_bits"):
        assert digests.get(key, {}) == report[key], key  # the artifact and the compiled graph agree
    return report | {k: digests[k] for k in ("graph_sha256", "graph_sha256_without_tags", "mlir_sha256")} | {
        "rule": RULE_VERSION}


def _cost_only(args) -> int:
    """One subprocess per grid; results under ``"pbs_per_step"`` in the JSON (no other entry changes)."""
    doc = json.loads(args.out.read_text()) if args.out.exists() else {"records": []}
    results = doc.get("pbs_per_step", {}).get("grids", [])
    for grid in args.grids:
        for strategy in args.strategies:
            print(f"N={grid} {strategy}: compile …", file=sys.stderr, flush=True)
            record = _child_record(["--cost-one", str(grid), strategy])
            if record is None:
                return 1
            doc = json.loads(args.out.read_text()) if args.out.exists() else doc  # another run may have written
            results = [r for r in doc.get("pbs_per_step", {}).get("grids", results)]
            key = (grid, strategy, record["rule"])  # the records of an earlier rule (graph) stay
            results = [r for r in results if (r["grid"], r["strategy"], r["rule"]) != key] + [record]
            print(f"N={grid} {strategy}: PBS {record['pbs_count']}", file=sys.stderr, flush=True)

    doc["pbs_per_step"] = {
        "what": "static cost of the shipped circuit, compiled only (no keys, no evaluation): PBS count in total "
                "and per step of the rule (concrete's programmable_bootstrap_count_per_tag over the rule's "
                "fhe.tag names), sizes, and the digests of the compiled graph. 10-bit offsets, 8-bit hurdles, "
                "margin mode. Load-independent. One record per grid, strategy and rule version (graph); \"rule\" "
                "names the current one.",
        "rule": RULE_VERSION,
        "grids": sorted(results, key=lambda r: (r["rule"], r["strategy"], r["grid"])),
    }
    args.out.write_text(json.dumps(doc, indent=1))
    return 0


def main(argv=None) -> int:
    reexec_with_fixed_plan()  # measure what the protocol runs: every evaluation under the fixed FFT plan
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[8, 16, 32])
    from crypto.circuit import FORMULATION  # no concrete import

    parser.add_argument("--strategies", nargs="+", default=["multi"], choices=["multi"])
    parser.add_argument("--runs", type=int, default=2, help="evaluations of the first case (replay check)")
    parser.add_argument("--cases", type=int, default=2, help="random valid report pairs per configuration (+1 invalid)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_fhe.json")
    parser.add_argument("--one", nargs=2, metavar=("N", "STRATEGY"), help=argparse.SUPPRESS)
    parser.add_argument("--compare-before", metavar="COMMIT",
                        help="instead: old (COMMIT's crypto/circuit.py) vs new circuit, interleaved, per grid")
    parser.add_argument("--compare-one", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--cost-only", action="store_true",
                        help="instead: compile each grid only (no keys, no evaluation): PBS per step, digests")
    parser.add_argument("--cost-one", nargs=2, metavar=("N", "STRATEGY"), help=argparse.SUPPRESS)
    parser.add_argument("--owner-vs-mono", action="store_true",
                        help="instead: COMMIT's mono circuit vs this tree's owner-encrypted one, interleaved, per grid")
    parser.add_argument("--levers", nargs="*", default=[],
                        help="with --owner-vs-mono: JSON dicts of extra fhe.Configuration options, one record each (default: {})")
    parser.add_argument("--owner-vs-mono-one", nargs=2, metavar=("N", "LEVERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.owner_vs_mono_one:
        print(json.dumps(owner_vs_mono_one(int(args.owner_vs_mono_one[0]), args.compare_before, args.runs,
                                           json.loads(args.owner_vs_mono_one[1]))), flush=True)
        os._exit(0)
    if args.owner_vs_mono:
        return _owner_vs_mono(args)
    if args.cost_one:
        print(json.dumps(cost_one(int(args.cost_one[0]), args.cost_one[1])), flush=True)
        os._exit(0)  # after concrete compiled, only os._exit leaves reliably (tests/conftest.py)
    if args.cost_only:
        return _cost_only(args)
    if args.compare_one:
        print(json.dumps(compare_one(args.compare_one, args.compare_before, args.runs)))
        return 0
    if args.compare_before:
        return _compare(args)
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.runs, args.cases)))
        return 0
    records = json.loads(args.out.read_text())["records"] if args.out.exists() else []
    for r in records:  # the removed formulations' figures stay, marked as such
        if r.get("formulation") != FORMULATION:
            r["historic"] = True
    for grid in args.grids:
        for strategy in args.strategies:
            print(f"N={grid} {FORMULATION}/{strategy} …", file=sys.stderr, flush=True)
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(grid), strategy,
                 "--runs", str(args.runs), "--cases", str(args.cases)],
                capture_output=True, text=True, cwd=ROOT,
            )
            if proc.returncode != 0:
                tail = "\n".join(l for l in proc.stderr.splitlines() if "WARNING" not in l)[-2000:]
                print(f"  failed:\n{tail}", file=sys.stderr)
                record = {"grid": grid, "formulation": FORMULATION, "strategy": strategy, "error": tail[-500:]}
            else:
                record = json.loads(proc.stdout.strip().splitlines()[-1])
            records = [r for r in records if (r["grid"], r["formulation"], r.get("strategy")) !=
                       (grid, FORMULATION, strategy)] + [record]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            doc = {"machine": machine(),
                   "records": sorted(records, key=lambda r: (r["formulation"], r.get("strategy", ""), r["grid"]))}
            args.out.write_text(json.dumps(doc, indent=1))
    _table(json.loads(args.out.read_text())["records"])
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _compare(args) -> int:
    """One subprocess per grid (its own peak memory); results under ``"strict_vs_flat_steps"`` in the JSON."""
    doc = json.loads(args.out.read_text()) if args.out.exists() else {"records": []}
    results = doc.get("strict_vs_flat_steps", {}).get("grids", [])
    superseded = doc.get("strict_vs_flat_steps", {}).get("superseded", [])
    for grid in args.grids:
        print(f"N={grid} old {args.compare_before[:12]} vs new …", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--compare-one", str(grid), "--compare-before",
                               args.compare_before, "--runs", str(args.runs)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print("\n".join(l for l in proc.stderr.splitlines() if "WARNING" not in l)[-3000:], file=sys.stderr)
            return 1
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        record["rule"] = RULE_VERSION
        # a measurement of an earlier graph of the new circuit is kept (marked with its rule version), not dropped
        earlier = [r | {"rule": r.get("rule", "weak-monotone-1")} for r in results if r["grid"] == grid]
        superseded += [r for r in earlier if r["rule"] != RULE_VERSION]
        results = [r for r in results if r["grid"] != grid] + [record]
        doc["strict_vs_flat_steps"] = {
            "what": "the circuit before (strict reports only, D10 shortcut) and after (flat steps, exact "
                    "per-Q survivor thresholds), compiled, keyed and evaluated in one process per grid, evaluations "
                    "interleaved on the same strictly monotone reports; the new circuit also on reports with flat "
                    "steps (FHE cost is data-independent: same graph). mono parameters, fixed FFT plan, 10-bit "
                    "offsets, 8-bit hurdles, margin mode. Seconds; load_average_1m sampled around every step.",
            "machine": machine(),
            "grids": sorted(results, key=lambda r: r["grid"]),
            "superseded": superseded,
        }
        args.out.write_text(json.dumps(doc, indent=1))
        o, n = record["old"], record["new"]
        print(f"N={grid}: PBS {o['pbs_count']} -> {n['pbs_count']}, evaluate {o['evaluate_strict']['mean']:.1f} -> "
              f"{n['evaluate_strict']['mean']:.1f} s (x{record['ratio_new_over_old_strict_mean']:.2f}), flat "
              f"{n.get('evaluate_flat', {}).get('mean', float('nan')):.1f} s, load {record['load_average_1m']['min']:.1f}"
              f"-{record['load_average_1m']['max']:.1f}", file=sys.stderr, flush=True)
    return 0


def _table(records) -> None:
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
