"""Threshold decryption (2-of-3, one-time truth tables) on the selection circuit's real output.

Measures, on one real FHE output of the shipped selection circuit (dealers' own TFHE-rs encryptions, ``multi``
parameters, six output rows of base-8 digits) at N = 16, as the protocol runs it: every holder answers (mask
share, then table share) in every timed round; combination time; dealer time per slot; and bytes: each
holder's key-share file, per decryption slot, for a market of 100 rounds' slots, each share blob, and what
each holder publishes per round. Every timed opening is checked equal to concrete's own decryption. Writes
``bench-results/bench_threshold.json`` (with the machine record) and prints a table.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_threshold.py [--grid 16] [--rounds 100] [--timed 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from crypto.circuit import SelectionCircuit, report_digits, unwrap_blob  # noqa: E402
from crypto.fhe_keys import CustodianFheKeys  # noqa: E402
from crypto.fhe_runtime import reexec_with_fixed_plan  # noqa: E402
from crypto.tfhers import encrypt_unproven_digits, expand_unproven_digits  # noqa: E402
from crypto.threshold import (  # noqa: E402
    KeyHolder, ThresholdParams, combine, deal_key, deal_slots, margin, read_output, read_output_encoding)
from market.terms import MarketTerms  # noqa: E402

HOLDERS = ("key_holder_1", "key_holder_2", "key_holder_3")


def run(grid: int, rounds: int, timed: int) -> dict:
    from concrete import fhe  # heavy and optional: imported where it is used

    load_before = os.getloadavg()[0]
    terms = MarketTerms(grid=grid, base_rate=100, rate_bits=10, hurdle_bits=8, hurdle_mode="margin")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        circuit = SelectionCircuit.for_terms(terms, work / "circuits")
        custodian = CustodianFheKeys.generate(circuit, work / "custodian")
        public_key = custodian.public_key_bytes()
        b = list(range(0, 10 * (grid + 1), 10))
        a = list(range(90 + 10 * grid, 80, -10))[: grid + 1]

        def dealer_input(side, offsets):  # what an evaluator imports from a dealer's own encryption
            digits = [int(d) for d in report_digits(circuit.shape, side, offsets, 0)]
            return expand_unproven_digits(encrypt_unproven_digits(public_key, digits), len(digits))

        started = time.perf_counter()
        out = circuit.evaluate(custodian.evaluation_keys_bytes(), dealer_input("mm", b), dealer_input("rm", a))
        evaluate_s = time.perf_counter() - started
        value = unwrap_blob("ciphertext_out", out)
        expected = custodian.decrypt_output(out)
        raw = np.asarray(custodian._client.decrypt(fhe.Value.deserialize(value)))  # concrete's own decryption
        encoding = read_output_encoding(circuit.client_specs.program_info.serialize())  # as create_market reads it
        if encoding != read_output(value).encoding:
            raise SystemExit(f"program info's encoding {encoding.as_dict()} differs from the output's")
        params = ThresholdParams.named("2of3", HOLDERS)
        dirs = {h: work / h for h in HOLDERS}
        started = time.perf_counter()
        setup = deal_key(custodian.keyset_bytes(), encoding, params, dirs)
        deal_key_s = time.perf_counter() - started
        started = time.perf_counter()
        deal_slots(setup, dirs, range(rounds))
        deal_slots_s = time.perf_counter() - started
        custodian.destroy_secret_keys()  # as create_market does
        slot_bytes = {h: sorted((dirs[h] / "slots").glob("*.slot"))[0].stat().st_size for h in HOLDERS}
        stored_bytes = {h: sum(p.stat().st_size for p in dirs[h].rglob("*") if p.is_file()) for h in HOLDERS}
        key_bytes = {h: (dirs[h] / "threshold-key.share").stat().st_size for h in HOLDERS}
        holders = {h: KeyHolder.load(dirs[h], h, setup_digest=setup.digest()) for h in HOLDERS}
        cts = read_output(value)
        mask_s, table_s, combine_s, blob_sizes = [], [], [], {}
        for round_ in range(1, timed + 1):
            slot = round_ - 1  # protocol.opening.slot_of
            masks = []
            for h in HOLDERS:  # every holder answers, as the round driver has them
                started = time.perf_counter()
                masks.append(holders[h].mask_share(value, round=round_, slot=slot))
                mask_s.append(time.perf_counter() - started)
            tables = []
            for h in HOLDERS:
                started = time.perf_counter()
                tables.append(holders[h].table_share(value, masks, round=round_, slot=slot))
                table_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = combine(setup, cts, masks, tables, round=round_, slot=slot)
            combine_s.append(time.perf_counter() - started)
            if not np.array_equal(np.asarray(result.values).reshape(-1), raw.reshape(-1)):
                raise SystemExit(f"round {round_}: threshold opening {result.values} differs from concrete's {raw}")
            blob_sizes = {"mask": len(masks[0]), "table": len(tables[0])}
        doc = {
            "machine": machine(load_average_1m={"before": load_before, "after": os.getloadavg()[0]}),
            "grid": grid, "circuit": "owner-encrypted (tfhers inputs, multi parameters)",
            "parameters": params.as_dict(), "encoding": encoding.as_dict(),
            "output_values": encoding.count, "margin": margin(encoding.width, params.share_count),
            "switch_bits": setup.switch_bits, "output_value_bytes": len(value), "selection": str(expected),
            "evaluate_s": evaluate_s, "checked_equal_to_concrete": timed,
            "timings_s": {
                "mask_share_per_holder": {"median": statistics.median(mask_s), "max": max(mask_s), "samples": len(mask_s)},
                "table_share_per_holder": {"median": statistics.median(table_s), "max": max(table_s), "samples": len(table_s)},
                "combine": {"median": statistics.median(combine_s), "samples": len(combine_s)},
                "deal_key": deal_key_s, "deal_slots_per_slot": deal_slots_s / rounds,
            },
            "bytes": {
                "key_share_file_per_holder": max(key_bytes.values()),
                "slot_file_per_holder_per_decryption": max(slot_bytes.values()),
                "holder_total_for_market": max(stored_bytes.values()),
                "market_rounds": rounds,
                "share_blob": blob_sizes,
                "published_per_holder_per_round": blob_sizes["mask"] + blob_sizes["table"],
                "setup_record": len(setup.to_bytes()),
            },
        }
    return doc


def print_table(doc: dict) -> None:
    t, b = doc["timings_s"], doc["bytes"]
    rows = [
        ("output values per round (N = %d)" % doc["grid"], f"{doc['output_values']} (width {doc['encoding']['width']} bits, "
                                                           f"LWE n = {doc['encoding']['lwe_dimension']})"),
        ("table size k (switch bits)", f"{doc['switch_bits']}"),
        ("mask share per holder per round", f"{t['mask_share_per_holder']['median'] * 1000:.1f} ms"),
        ("table share per holder per round", f"{t['table_share_per_holder']['median'] * 1000:.1f} ms"),
        ("combine (anyone)", f"{t['combine']['median'] * 1000:.1f} ms"),
        ("dealer per slot (3 holders)", f"{t['deal_slots_per_slot'] * 1000:.0f} ms"),
        ("key-share file per holder", f"{b['key_share_file_per_holder']:,} B"),
        ("stored per holder per decryption", f"{b['slot_file_per_holder_per_decryption']:,} B"),
        (f"stored per holder, market of {b['market_rounds']} rounds", f"{b['holder_total_for_market'] / 1e6:.1f} MB"),
        ("share blob (mask / table)", f"{b['share_blob']['mask']:,} / {b['share_blob']['table']:,} B"),
        ("published per holder per round", f"{b['published_per_holder_per_round']:,} B"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, shown in rows:
        print(f"{name.ljust(width)}  {shown}")


def main() -> None:
    reexec_with_fixed_plan()  # evaluations run under the fixed FFT plan, as in the protocol
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--timed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_threshold.json")
    args = parser.parse_args()
    doc = run(args.grid, args.rounds, args.timed)
    args.out.write_text(json.dumps(doc, indent=1))
    print_table(doc)


if __name__ == "__main__":
    main()
