"""Benchmark of owner encryption (issue #12): dealers encrypt under a TFHE-rs compact public key with an
input proof; circuits import the ciphertexts through concrete's tfhers bridge.

Sections (each run merges its sections into the JSON, so slow ones can run separately):

- ``keys``: client key + compact public key generation (node-tfhe 0.10.0, WASM, one thread), sizes;
  with ``--generate-crs`` also the proof CRS (slow: minutes).
- ``report``: one report at N = 16 (17 offsets x 3 digits + hurdle x 2 digits = 53 base-16 digits):
  encryption + proof time, blob size, verification + expansion time, import-buffer size.
  Targets: encryption + proof <= 2 s, verification <= 1 s, blob <= 1.2 MB.
- ``noise``: ``--noise-digits`` owner-encrypted digits (same encryption as a proven report, without the
  proof) decrypted after a circuit's first lookup (``to_native`` then one table lookup per digit, real
  FHE, batches of ``--batch``), plus the encryption noise measured before any bootstrap.
- ``zk_v2``: the newest prover the npm registry offers (node-tfhe 1.7.0, ZK scheme v2, installed into
  ``.tools/probe-node-tfhe-1.7.0/`` only for this section): CRS and proof CPU time for the same 53 digits, with
  the only parameter set that node-tfhe 1.x lets prove (d = 2048; its ciphertexts need a tfhe-rs casting
  keyswitch, so concrete 2.11 cannot import them). Evidence for the proof-time question, not a usable path.

Usage: .venv/bin/python benchmarks/bench_owner_encryption.py [--sections keys,report,noise,zk_v2]
       [--generate-crs] [--crs FILE] [--noise-digits 10000] [--batch 500] [--out FILE]
Writes JSON (default bench-results/bench_owner_encryption.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from crypto.tfhers import (  # noqa: E402
    decrypt_import_buffer,
    encrypt_report,
    encrypt_unproven_digits,
    expand_unproven_digits,
    generate_public_key_material,
    owner_report_binding,
    verify_and_expand,
)
from crypto.tfhers import owner_encryption  # noqa: E402
from crypto.tfhers.owner_encryption import cached_crs_path, phase_errors  # noqa: E402

TARGETS = {"encrypt_prove_s": 2.0, "verify_s": 1.0, "blob_bytes": 1_200_000}
N_POINTS = 16
DIGITS_N16 = (N_POINTS + 1) * 3 + 2  # 10-bit offsets as 3 base-16 digits, an 8-bit hurdle as 2


def bench_keys(work: Path, generate_crs: bool, crs: bytes | None) -> tuple[dict, bytes]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    material = generate_public_key_material(work / "keys", seed=2026, crs=None if generate_crs else crs)
    wall = time.perf_counter() - start
    record = {
        "keygen_ms": material.times_ms["keys_ms"],
        "client_key_bytes": material.sizes["client_key"],
        "public_key_bytes": material.sizes["public_key"],
        "wall_s": wall,
        "load_average_1m": {"before": load, "after": os.getloadavg()[0]},
    }
    if generate_crs:
        record["crs_generation_s"] = material.times_ms["crs_ms"] / 1000
        record["crs_bytes"] = material.sizes["crs"]
        record["crs_max_digits"] = 72
    return record, material.crs_path.read_bytes()


def bench_report(work: Path, crs: bytes, repeats: int, compute_load: str = "proof") -> dict:
    material = generate_public_key_material(work / "report-keys", seed=16, crs=crs)
    public_key = material.public_key_path.read_bytes()
    binding = owner_report_binding(chain_id=1337, contract="0x" + "ab" * 20, round=1, dealer_role="dealer_mm")
    rng = np.random.default_rng(16)
    runs = []
    for _ in range(repeats):
        digits = [int(d) for d in rng.integers(0, 16, DIGITS_N16)]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        blob = encrypt_report(public_key, crs, digits, binding, compute_load=compute_load)
        encrypt_s = time.perf_counter() - start
        start = time.perf_counter()
        report = verify_and_expand(blob, public_key=public_key, crs=crs, expected=binding, digit_count=DIGITS_N16)
        verify_s = time.perf_counter() - start
        decrypted = decrypt_import_buffer(material.client_key_path.read_bytes(), report.import_buffer)
        runs.append({"encrypt_prove_s": encrypt_s, "verify_expand_s": verify_s, "verify_node_ms": report.verify_ms,
                     "prove_node_cpu_s": owner_encryption.LAST_ENCRYPTION_CPU_MS[0] / 1000,
                     "verify_node_cpu_s": report.verify_cpu_ms / 1000,
                     "blob_bytes": len(blob), "import_buffer_bytes": len(report.import_buffer),
                     "decrypted_correctly": decrypted == digits, "load_average_1m": load})
    best = {k: min(r[k] for r in runs)
            for k in ("encrypt_prove_s", "verify_expand_s", "blob_bytes", "prove_node_cpu_s", "verify_node_cpu_s")}
    return {
        "points": N_POINTS, "digits": DIGITS_N16, "compute_load": compute_load, "runs": runs, "best": best,
        "crs_bytes": len(crs), "targets": TARGETS,
        "meets_targets": {"encrypt_prove_s": best["encrypt_prove_s"] <= TARGETS["encrypt_prove_s"],
                          "verify_s": best["verify_expand_s"] <= TARGETS["verify_s"],
                          "blob_bytes": best["blob_bytes"] <= TARGETS["blob_bytes"]},
    }


def bench_noise(work: Path, total: int, batch: int) -> dict:
    from concrete import fhe
    from scipy.stats import beta

    from crypto.tfhers import digit_type, inject_client_key, to_native_digits
    from concrete.fhe import tfhers

    material = generate_public_key_material(work / "noise-keys", seed=10_000, crs=b"unused")
    public_key = material.public_key_path.read_bytes()
    client_key = material.client_key_path.read_bytes()
    table = fhe.LookupTable([(11 * v + 5) % 32 for v in range(32)])  # a permutation: any error shows

    def first_lookup(x):
        return fhe.hint(table[to_native_digits(x)], bit_width=5)

    dtype = digit_type()
    compiler = fhe.Compiler(first_lookup, {"x": "encrypted"})
    inputset = [tfhers.TFHERSInteger(dtype, np.full((batch,), v)) for v in range(4)]
    start = time.perf_counter()
    circuit = compiler.compile(inputset, fhe.Configuration(parameter_selection_strategy="multi"))
    compile_s = time.perf_counter() - start
    bridge = tfhers.new_bridge(circuit)
    start = time.perf_counter()
    inject_client_key(bridge, material.client_key_path, [0], seed=1)
    keygen_s = time.perf_counter() - start
    rng = np.random.default_rng(12)
    errors, pre_errors, done, run_s, noise = 0, 0, 0, 0.0, []
    load = os.getloadavg()[0]
    while done < total:
        digits = [int(d) for d in rng.integers(0, 16, batch)]
        buffer = expand_unproven_digits(encrypt_unproven_digits(public_key, digits), batch)
        pre = decrypt_import_buffer(client_key, buffer)
        pre_errors += sum(int(a != b) for a, b in zip(pre, digits))
        noise.extend(phase_errors(client_key, buffer, digits))
        value = bridge.import_value(buffer, 0)
        start = time.perf_counter()
        out = circuit.server.run(value, evaluation_keys=circuit.client.evaluation_keys)
        run_s += time.perf_counter() - start
        result = circuit.client.decrypt(out)
        expected = [(11 * d + 5) % 32 for d in digits]
        errors += int(np.sum(np.asarray(result) != np.asarray(expected)))
        done += batch
        print(f"  noise: {done}/{total} digits, {errors} errors", flush=True)
    noise_arr = np.asarray(noise, dtype=np.float64)
    std = float(noise_arr.std())
    return {
        "digits": done, "batch": batch, "errors_after_first_lookup": errors,
        "errors_before_bootstrap": pre_errors,
        "error_rate": errors / done,
        # one-sided 95 % Clopper-Pearson upper bound on the per-digit failure probability (~3/n at 0 errors)
        "p_fail_upper_95": float(beta.ppf(0.95, errors + 1, done - errors)),
        "concrete_p_error": float(circuit.p_error), "concrete_global_p_error": float(circuit.global_p_error),
        "pbs_per_batch": int(circuit.statistics.get("programmable_bootstrap_count", -1)),
        "encryption_noise_std_log2": math.log2(std) if std > 0 else None,
        "encryption_noise_max_abs_log2": math.log2(float(np.abs(noise_arr).max()) or 1.0),
        "decision_margin_log2": 57,
        "compile_s": compile_s, "keygen_with_injected_key_s": keygen_s, "run_s_total": run_s,
        "run_s_per_digit": run_s / done, "load_average_1m": {"before": load, "after": os.getloadavg()[0]},
    }


ZK_V2_NODE_TFHE = "1.7.0"


def bench_zk_v2(digits: int = DIGITS_N16) -> dict:
    import subprocess

    prefix = ROOT / ".tools" / f"probe-node-tfhe-{ZK_V2_NODE_TFHE}"
    package = prefix / "node_modules" / "node-tfhe"
    if not (package / "package.json").is_file():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"node-tfhe@{ZK_V2_NODE_TFHE}"], check=True)
    load = os.getloadavg()[0]
    probe = ROOT / "benchmarks" / "node" / "zk_v2_probe.js"
    done = subprocess.run(["node", str(probe), str(package), str(digits)], check=True, capture_output=True, text=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    return record | {"node_tfhe": ZK_V2_NODE_TFHE, "load_average_1m": {"before": load, "after": os.getloadavg()[0]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="keys,report,noise")
    parser.add_argument("--generate-crs", action="store_true")
    parser.add_argument("--crs", type=Path, default=cached_crs_path())
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compute-load", choices=("proof", "verify"), default="proof",
                        help="tfhe-rs ZkComputeLoad; 'verify' is stored as section report_verify_load")
    parser.add_argument("--noise-digits", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_owner_encryption.json")
    args = parser.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - {"keys", "report", "noise", "zk_v2"}
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}")
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc["machine"] = machine()
    crs = args.crs.read_bytes() if args.crs.exists() else None
    with tempfile.TemporaryDirectory(prefix="bench-owner-") as tmp:
        work = Path(tmp)
        if "keys" in sections:
            doc["keys"], generated = bench_keys(work, args.generate_crs, crs)
            if args.generate_crs:
                crs = generated
                args.crs.parent.mkdir(parents=True, exist_ok=True)
                args.crs.write_bytes(crs)
        if "report" in sections:
            if crs is None:
                parser.error(f"--crs {args.crs}: not found (run with --sections keys --generate-crs first)")
            key = "report" if args.compute_load == "proof" else "report_verify_load"
            doc[key] = bench_report(work, crs, args.repeats, args.compute_load)
        if "noise" in sections:
            doc["noise"] = bench_noise(work, args.noise_digits, args.batch)
        if "zk_v2" in sections:
            doc["zk_v2"] = bench_zk_v2()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    _table(doc)


def _table(doc: dict) -> None:
    rows = []
    if "keys" in doc:
        k = doc["keys"]
        rows.append(("client key + compact public key", f"{k['keygen_ms']} ms", f"pk {k['public_key_bytes']:,} B"))
        if "crs_generation_s" in k:
            rows.append(("CRS generation (72 digits)", f"{k['crs_generation_s']:.0f} s", f"{k['crs_bytes']:,} B"))
    for key in ("report", "report_verify_load"):
        if key not in doc:
            continue
        r = doc[key]
        load = r.get("compute_load", "proof")
        rows.append((f"encrypt + prove ({load} load), N = {r['points']} ({r['digits']} digits)",
                     f"{r['best']['encrypt_prove_s']:.1f} s (target 2 s)",
                     f"blob {r['best']['blob_bytes']:,} B, CPU {r['best'].get('prove_node_cpu_s', 0):.1f} s"))
        rows.append(("verify + expand", f"{r['best']['verify_expand_s']:.1f} s (target 1 s)",
                     f"import {r['runs'][0]['import_buffer_bytes']:,} B, CPU {r['best'].get('verify_node_cpu_s', 0):.1f} s"))
    if "noise" in doc:
        n = doc["noise"]
        rows.append((f"first lookup on {n['digits']:,} owner-encrypted digits",
                     f"{n['errors_after_first_lookup']} errors", f"p_fail < {n['p_fail_upper_95']:.1e} (95 %)"))
        rows.append(("encryption noise before bootstrap", f"std 2^{n['encryption_noise_std_log2']:.1f}",
                     f"margin 2^{n['decision_margin_log2']}"))
    if "zk_v2" in doc:
        z = doc["zk_v2"]
        rows.append((f"node-tfhe {z['node_tfhe']} ZK v2 prove ({z['digits']} digits, d = 2048)",
                     f"CPU {z['prove_cpu_ms_proof_load'] / 1000:.1f} s (proof load)",
                     f"{z['prove_cpu_ms_verify_load'] / 1000:.1f} s (verify load); CRS {z['crs_bytes']:,} B"))
    width = max(len(r[0]) for r in rows) if rows else 0
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:<28}  {b}")


if __name__ == "__main__":
    main()
