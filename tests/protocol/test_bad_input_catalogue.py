"""The command line's bad-input catalogue: every case gets a clean error naming the option
or field and the value, exits non-zero, prints no traceback and leaves no partial state -- no data
directory, no market.json, no deployed contract, an existing market untouched.

Cases run in-process through ``protocol.cli.main(argv)`` (the same dispatch a real process runs; a few
are repeated as real processes at the end). Every range comes from ``market.limits``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.layout import DataDir
from market import limits
from protocol.cli import main

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]
BIG = str(2**63)
HUGE = str(10**12)

GOOD_JSON = {"b": [300, 301, 302, 303, 304], "a": [310, 309, 308, 307, 306]}


def _files(d: Path) -> dict[str, bytes]:
    """Schedule files, each named for what is wrong with it."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}

    def put(name, data):
        path = d / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name] = path

    def js(name, obj):
        put(name, json.dumps(obj))

    put("latin1.json", '{"b": [300], "a": [310]} \u00e9'.encode("latin-1"))
    put("deep.json", "[" * 200_000 + "]" * 200_000)
    put("deep-object.json", '{"b": ' + "[" * 50 + "]" * 50 + ', "a": []}')
    js("int63.json", {"b": [300, 301, 302, 303, 2**63], "a": GOOD_JSON["a"]})
    js("int62.json", {"b": [300, 301, 302, 303, 2**62], "a": GOOD_JSON["a"]})
    js("near62.json", {"b": [2**62 - 5, 2**62 - 4, 2**62 - 3, 2**62 - 2, 2**62 - 1],
                       "a": [2**62 + 4, 2**62 + 3, 2**62 + 2, 2**62 + 1, 2**62]})
    js("big-a.json", {"b": GOOD_JSON["b"], "a": [2**40, 309, 308, 307, 306]})
    js("zero-rate.json", {"b": [0, 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("negative-rate.json", {"b": [-300, 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("float-rate.json", {"b": [300.5, 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("string-rate.json", {"b": ["300", 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("bool-rate.json", {"b": [True, 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("null-rate.json", {"b": [None, 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("nested-rate.json", {"b": [[300], 301, 302, 303, 304], "a": GOOD_JSON["a"]})
    js("list.json", [1, 2, 3])
    js("string.json", "b")
    js("number.json", 5)
    js("no-b.json", {"a": GOOD_JSON["a"]})
    js("no-a.json", {"b": GOOD_JSON["b"]})
    js("b-not-list.json", {"b": 300, "a": GOOD_JSON["a"]})
    js("a-dict.json", {"b": GOOD_JSON["b"], "a": {"0": 1}})
    js("lengths.json", {"b": GOOD_JSON["b"], "a": GOOD_JSON["a"][:-1]})
    js("b-decreasing.json", {"b": [300, 302, 301, 303, 304], "a": GOOD_JSON["a"]})
    js("a-increasing.json", {"b": GOOD_JSON["b"], "a": [310, 311, 308, 307, 306]})
    js("empty-lists.json", {"b": [], "a": []})
    js("one-point.json", {"b": [300], "a": [310]})
    js("long.json", {"b": list(range(300, 300 + 4100)), "a": list(range(9000, 9000 - 4100, -1))})
    put("truncated.json", '{"b": [300, 301')
    put("empty.json", "")
    put("garbage.json", "\x00\x01\x02 not json")
    put("nan.json", '{"b": [NaN, 301, 302, 303, 304], "a": [310, 309, 308, 307, 306]}')
    put("inf.json", '{"b": [Infinity, 301, 302, 303, 304], "a": [310, 309, 308, 307, 306]}')
    put("bad-header.csv", "Q,x,y\n0,300,310\n1,301,309\n")
    put("extra-column.csv", "Q,b,a,c\n0,300,310,1\n1,301,309,1\n")
    put("non-int.csv", "Q,b,a\n0,300,310\n1,abc,309\n")
    put("q-order.csv", "Q,b,a\n0,300,310\n2,301,309\n")
    put("int63.csv", f"Q,b,a\n0,300,310\n1,{2**63},309\n")
    put("latin1.csv", "Q,b,a\n0,300,310\n1,301,309 \u00e9\n".encode("latin-1"))
    put("missing-cell.csv", "Q,b,a\n0,300,310\n1,301\n")
    put("empty.csv", "")
    good_b, good_a = json.dumps(GOOD_JSON["b"]), json.dumps(GOOD_JSON["a"])
    put("dup-b.json", f'{{"b": {good_b}, "a": {good_a}, "b": [300, 301, 302, 303, 305]}}')
    put("dup-a.json", f'{{"a": {good_a}, "b": {good_b}, "a": {good_a}}}')
    put("dup-extra.json", f'{{"b": {good_b}, "a": {good_a}, "note": 1, "note": 2}}')
    put("digits-5000.json", f'{{"b": {good_b}, "a": [310, 309, 308, 307, {"9" * 5000}]}}')
    put("digits-negative-5000.json", f'{{"b": [-{"1" * 5000}, 301, 302, 303, 304], "a": {good_a}}}')
    put("digits-1001.json", f'{{"b": [{"7" * 1001}, 301, 302, 303, 304], "a": {good_a}}}')
    put("huge.json", '{"b": [300], "a": [310], "pad": "' + "x" * (2 << 20) + '"}')
    put("digits-5000.csv", f"Q,b,a\n0,300,310\n1,{'9' * 5000},309\n")
    (d / "a-folder.json").mkdir(exist_ok=True)
    out["a-folder.json"] = d / "a-folder.json"
    out["missing.json"] = d / "missing.json"
    return out


# (schedule file, what the message must name)
SCHEDULE_FILES = [
    ("latin1.json", "not UTF-8"), ("deep.json", "nested"), ("deep-object.json", "nested"),
    ("int63.json", f"b[4] = {2**63}"), ("int62.json", f"b[4] = {2**62}"), ("near62.json", "b[0] ="),
    ("big-a.json", f"a[0] = {2**40}"), ("zero-rate.json", "b[0] = 0"), ("negative-rate.json", "b[0] = -300"),
    ("float-rate.json", "300.5"), ("string-rate.json", "'300'"), ("bool-rate.json", "True"),
    ("null-rate.json", "None"), ("nested-rate.json", "[300]"), ("list.json", "JSON object"),
    ("string.json", "JSON object"), ("number.json", "JSON object"), ("no-b.json", "JSON object"),
    ("no-a.json", "JSON object"), ("b-not-list.json", '"b"'), ("a-dict.json", '"a"'), ("lengths.json", "a"),
    ("b-decreasing.json", "b[2]"), ("a-increasing.json", "a[1]"), ("empty-lists.json", ""),
    ("one-point.json", ""), ("long.json", "4100 rates"), ("truncated.json", "not valid JSON"),
    ("empty.json", "not valid JSON"), ("garbage.json", "not valid JSON"), ("nan.json", "nan"),
    ("inf.json", "inf"), ("bad-header.csv", "Q,b,a"), ("extra-column.csv", "Q,b,a"), ("non-int.csv", "abc"),
    ("q-order.csv", "Q = 2"), ("int63.csv", str(2**63)), ("latin1.csv", "not UTF-8"),
    ("missing-cell.csv", "a"), ("empty.csv", "Q,b,a"), ("a-folder.json", "not a regular file"),
    ("missing.json", "cannot read"),
    ("dup-b.json", "duplicate key 'b'"), ("dup-a.json", "duplicate key 'a'"),
    ("dup-extra.json", "duplicate key 'note'"), ("digits-5000.json", "5000 digits"),
    ("digits-negative-5000.json", "5000 digits"), ("digits-1001.json", "1001 digits"),
    ("digits-5000.csv", "5000 digits"),
]


def _option_cases():
    """(id, argv without --data-dir, text the error must contain)."""
    M = limits
    cases = []
    for g in ("-1", "0", "1", "3", str(M.MAX_MARKET_GRID + 1), "600", "100000", BIG):
        cases.append((f"demo-grid-{g}", ["demo", "--grid", g], f"--grid {g}"))
    for r in ("-1", str(M.MAX_DEMO_ROUNDS + 1), HUGE, BIG):
        cases.append((f"demo-rounds-{r}", ["demo", "--rounds", r], f"--rounds {r}"))
    for e in ("0", "-1", "17", "40", BIG):
        cases.append((f"demo-evaluators-{e}", ["demo", "--evaluators", e], f"--evaluators {e}"))
    for t in ("0", "-3", "17"):
        cases.append((f"demo-threshold-{t}", ["demo", "--threshold", t], f"--threshold {t}"))
    cases.append(("demo-threshold-above", ["demo", "--evaluators", "2", "--threshold", "3"], "--threshold 3"))
    cases.append(("demo-threshold-above-1", ["demo", "--evaluators", "1", "--threshold", "2"], "--threshold 2"))
    for s in ("-1", BIG, str(-2**70)):
        cases.append((f"demo-seed-{s}", ["demo", "--seed", s], f"--seed {s}"))
    for url, shown in (("ftp://x", "'ftp://x'"), ("nohost", "'nohost'"), ("http://", "'http://'"), ("", "''"),
                       ("file:///etc/passwd", "'file:///etc/passwd'"), ("javascript:alert(1)", "'javascript:alert(1)'"),
                       ("http://127.0.0.1:9", "http://127.0.0.1:9"), ("https://127.0.0.1:9", "https://127.0.0.1:9"),
                       ("http://127.0.0.1:1/x", "http://127.0.0.1:1/x")):
        cases.append((f"demo-rpc-{url or 'empty'}", ["demo", "--rpc", url], f"--rpc {shown}"))
    cases += [
        ("demo-backend", ["demo", "--backend", "quantum"], "--backend"),
        ("demo-grid-text", ["demo", "--grid", "abc"], "--grid"),
        ("demo-rounds-float", ["demo", "--rounds", "1.5"], "--rounds"),
        ("demo-unknown-option", ["demo", "--turbo"], "--turbo"),
        ("demo-holders-simulate", ["demo", "--backend", "simulate", "--holders", "3"], "--holders 3: needs --backend fhe"),
        ("demo-holder-threshold-simulate", ["demo", "--backend", "simulate", "--holder-threshold", "2"],
         "--holder-threshold 2: needs --backend fhe"),
        ("demo-holders-1", ["demo", "--holders", "1"], "--holders 1"),
        ("demo-holders-17", ["demo", "--holders", "17"], "--holders 17"),
        ("demo-holder-threshold-1", ["demo", "--holder-threshold", "1"], "--holder-threshold 1"),
        ("demo-holder-threshold-above", ["demo", "--holders", "3", "--holder-threshold", "4"],
         "--holder-threshold 4: must not exceed --holders 3"),
        ("demo-holder-threshold-default", ["demo", "--holder-threshold", "4"],
         "--holder-threshold 4: must not exceed the 3 key holders"),
        ("demo-holder-sharing-too-large", ["demo", "--holders", "16", "--holder-threshold", "8"],
         "--holder-threshold 8: threshold: 8 of 16 needs 11440 replicated shares"),
    ]
    for r in ("0", "-1", HUGE, str(M.MAX_SIM_ROUNDS + 1)):
        cases.append((f"simulate-rounds-{r}", ["simulate", "--rounds", r], f"--rounds {r}"))
    for g in ("0", "-1", str(M.MAX_ANALYSIS_GRID + 1), str(10**9)):
        cases.append((f"simulate-grid-{g}", ["simulate", "--grid", g], f"--grid {g}"))
    for opt in ("--theta", "--hurdle-max"):
        for v in ("-1", str(M.MAX_SHOCK_BP + 1), BIG):
            cases.append((f"simulate{opt}-{v}", ["simulate", opt, v], f"{opt} {v}"))
    cases += [
        ("simulate-protocol-grid", ["simulate", "--backend", "simulate", "--grid", "65"], "--grid 65"),
        ("simulate-protocol-rounds", ["simulate", "--backend", "simulate", "--rounds", "1001"], "--rounds 1001"),
        ("simulate-fhe-grid", ["simulate", "--backend", "fhe", "--grid", "9"], "--grid 9"),
        ("simulate-rpc-scheme", ["simulate", "--backend", "simulate", "--rpc", "ftp://x"], "--rpc 'ftp://x'"),
        ("simulate-rpc-down", ["simulate", "--backend", "simulate", "--rpc", "http://127.0.0.1:9"],
         "--rpc http://127.0.0.1:9"),
        ("simulate-rpc-plain", ["simulate", "--rpc", "http://127.0.0.1:9"], "--rpc http://127.0.0.1:9"),
        ("simulate-seed", ["simulate", "--seed", "-5"], "--seed -5"),
        ("simulate-family", ["simulate", "--family", "cubic"], "--family"),
        ("simulate-plot-missing-folder", ["simulate", "--plot", "/nonexistent/folder/plots"], "--plot /nonexistent"),
    ]
    for v in ("abc", "1e3", ""):
        cases.append((f"equilibria-rlo-{v or 'empty'}", ["equilibria", "--linear", v, "400", "1", "1", "--grid", "10"],
                      "R_LO"))
    cases += [
        ("equilibria-rhi-negative", ["equilibria", "--linear", "300", "-5", "1", "1", "--grid", "10"], "R_HI -5"),
        ("equilibria-rhi-2^62", ["equilibria", "--linear", "300", str(2**62), "1", "1", "--grid", "10"],
         f"R_HI {2**62}"),
        ("equilibria-rlo-2^63", ["equilibria", "--linear", BIG, "400", "1", "1", "--grid", "10"], f"R_LO {BIG}"),
        ("equilibria-alpha-zero", ["equilibria", "--linear", "300", "400", "0", "1", "--grid", "10"], "0"),
        ("equilibria-alpha-negative", ["equilibria", "--linear", "300", "400", "-1", "1", "--grid", "10"], "-1"),
        ("equilibria-alpha-text", ["equilibria", "--linear", "300", "400", "x", "1", "--grid", "10"], "'x'"),
        ("equilibria-alpha-long", ["equilibria", "--linear", "300", "400", "1" * 100, "1", "--grid", "10"],
         "ALPHA_D"),
        ("equilibria-alpha-slash0", ["equilibria", "--linear", "300", "400", "1/0", "1", "--grid", "10"], "1/0"),
        ("equilibria-no-grid", ["equilibria", "--linear", "300", "400", "1", "1"], "--grid"),
        ("equilibria-grid-0", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "0"], "--grid 0"),
        ("equilibria-grid-neg", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "-4"], "--grid -4"),
        ("equilibria-grid-big", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "4001"], "--grid 4001"),
        ("equilibria-grid-huge", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", BIG], f"--grid {BIG}"),
        ("equilibria-hurdle-neg", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "10",
                                   "--hurdle-mm", "-1"], "--hurdle-mm -1"),
        ("equilibria-hurdle-2^62", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "10",
                                    "--hurdle-rm", str(2**62)], f"--hurdle-rm {2**62}"),
        ("equilibria-plot-not-png", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "10",
                                     "--plot", "map.txt"], "--plot map.txt"),
        ("equilibria-plot-missing-folder", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "10",
                                            "--plot", "/nonexistent/x/map.png"], "--plot /nonexistent/x/map.png"),
        ("equilibria-no-source", ["equilibria", "--grid", "10"], "--linear"),
        ("equilibria-mode", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "10", "--hurdle-mode", "x"],
         "--hurdle-mode"),
    ]
    for bits in ("0", "-1", "15", "64", BIG):
        cases.append((f"select-rate-bits-{bits}", ["select", "--schedules", "@good.json", "--rate-bits", bits],
                      f"--rate-bits {bits}"))
    for bits in ("0", "11", "-2"):
        cases.append((f"select-hurdle-bits-{bits}", ["select", "--schedules", "@good.json", "--hurdle-bits", bits],
                      f"--hurdle-bits {bits}"))
    cases += [
        ("select-base-negative", ["select", "--schedules", "@good.json", "--base-rate", "-1"], "--base-rate -1"),
        ("select-base-2^62", ["select", "--schedules", "@good.json", "--base-rate", str(2**62)],
         f"--base-rate {2**62}"),
        ("select-base-above-rates", ["select", "--schedules", "@good.json", "--base-rate", "305",
                                     "--backend", "plain"], "305"),
        ("select-offset-too-wide", ["select", "--schedules", "@good.json", "--base-rate", "0", "--rate-bits", "4",
                                    "--hurdle-bits", "4", "--backend", "plain"], "b[0] = 300"),
        ("select-hurdle-mm-neg", ["select", "--schedules", "@good.json", "--hurdle-mm", "-1"], "--hurdle-mm -1"),
        ("select-hurdle-rm-2^63", ["select", "--schedules", "@good.json", "--hurdle-rm", BIG], f"--hurdle-rm {BIG}"),
        ("select-hurdle-above-bits", ["select", "--schedules", "@good.json", "--hurdle-mm", "300",
                                      "--backend", "plain"], "hurdle = 300"),
        ("select-formulation", ["select", "--schedules", "@good.json", "--formulation", "radix"],
         "unrecognized arguments: --formulation radix"),  # the circuit has one formulation: no option to choose it
        ("select-circuit-grid", ["select", "--schedules", "@wide.json", "--backend", "simulate"], "terms.grid = 65"),
        ("select-no-schedules", ["select"], "--schedules"),
    ]
    for r in ("0", "-1", BIG):
        cases.append((f"verify-round-{r}", ["verify", "--round", r], f"--round {r}"))
    cases += [
        ("verify-rpc-scheme", ["verify", "--rpc", "nohost"], "--rpc 'nohost'"),
        ("verify-rpc-down", ["verify", "--rpc", "http://127.0.0.1:9"], "--rpc http://127.0.0.1:9"),
        ("verify-no-market", ["verify"], "no market here"),
        ("chain-action", ["chain", "restart"], "'restart'"),
        ("chain-seed", ["chain", "status", "--seed", "-1"], "--seed -1"),
        ("bench-unknown", ["bench", "warp"], "'warp'"),
        ("experiment-unknown", ["experiment", "nope", "--out", "@out"], "'nope'"),
        ("experiment-replications-0", ["experiment", "participation-shock", "--out", "@out", "--replications", "0"],
         "--replications = 0"),
        ("experiment-replications-huge", ["experiment", "participation-shock", "--out", "@out",
                                          "--replications", HUGE], f"--replications = {HUGE}"),
        ("experiment-out-missing-folder", ["experiment", "participation-shock", "--out", "/nonexistent/a/b"],
         "/nonexistent/a/b"),
        ("experiment-out-file", ["experiment", "participation-shock", "--out", "@good.json"], "not a directory"),
        ("allocate-mismatch", ["allocate", "--alpha", "1", "2", "--beta", "1"], "--alpha"),
        ("allocate-tau-neg", ["allocate", "--alpha", "1", "--beta", "1", "--tau", "-1"], "--tau = -1"),
        ("allocate-tau-nan", ["allocate", "--alpha", "1", "--beta", "1", "--tau", "nan"], "--tau = nan"),
        ("allocate-m-zero", ["allocate", "--alpha", "1", "--beta", "1", "--m", "0"], "--m = 0"),
        ("allocate-m-inf", ["allocate", "--alpha", "1", "--beta", "1", "--m", "inf"], "--m = inf"),
        ("allocate-reports-0", ["allocate", "--alpha", "1", "--beta", "1", "--reports", "0"], "--reports = 0"),
        ("allocate-reports-huge", ["allocate", "--alpha", "1", "--beta", "1", "--reports", HUGE],
         f"--reports {HUGE}"),
        ("allocate-max-iter-0", ["allocate", "--alpha", "1", "--beta", "1", "--max-iter", "0"], "--max-iter = 0"),
        ("allocate-max-iter-huge", ["allocate", "--alpha", "1", "--beta", "1", "--max-iter", HUGE],
         f"--max-iter {HUGE}"),
        ("allocate-eta-neg", ["allocate", "--alpha", "1", "--beta", "1", "--eta", "-1"], "--eta = -1"),
        ("allocate-rpc-down", ["allocate", "--alpha", "1", "--beta", "1", "--method", "onchain", "--rpc",
                               "http://127.0.0.1:9"], "--rpc http://127.0.0.1:9"),
        ("no-command", [], "COMMAND"),
        ("unknown-command", ["teleport"], "teleport"),
    ]
    for cmd in ("equilibria", "select"):
        for name, match in SCHEDULE_FILES:
            cases.append((f"{cmd}-file-{name}", [cmd, "--schedules", f"@{name}"], match))
    return cases + _second_pass_cases()


LONG_NAME = "x" * 300


def _second_pass_cases():
    """The second reliability pass, by class: argparse's own errors are one line for every subcommand;
    nothing overflows unnamed; options a run would ignore are refused; limits agree across commands."""
    M = limits
    cases = []
    # argparse's errors: one line naming the option and the value, for every subcommand
    for case_id, argv, match in (
        ("simulate-rounds-ten", ["simulate", "--rounds", "ten"], "--rounds: invalid int value: 'ten'"),
        ("demo-grid-float", ["demo", "--grid", "4.5"], "--grid: invalid int value: '4.5'"),
        ("demo-evaluators-text", ["demo", "--evaluators", "two"], "--evaluators: invalid int value: 'two'"),
        ("equilibria-grid-text", ["equilibria", "--linear", "300", "400", "1", "1", "--grid", "ten"], "'ten'"),
        ("equilibria-linear-3-values", ["equilibria", "--linear", "300", "400", "1"], "--linear"),
        ("equilibria-both-sources", ["equilibria", "--linear", "300", "400", "1", "1", "--schedules", "@good.json"],
         "not allowed with argument"),
        ("select-hurdle-text", ["select", "--schedules", "@good.json", "--hurdle-mm", "x"], "--hurdle-mm"),
        ("select-backend-choice", ["select", "--schedules", "@good.json", "--backend", "gpu"], "'gpu'"),
        ("verify-round-text", ["verify", "--round", "one"], "--round: invalid int value: 'one'"),
        ("export-audit-no-dir", ["export-audit"], "DIR"),
        ("allocate-no-alpha", ["allocate", "--beta", "1"], "--alpha"),
        ("allocate-tau-text", ["allocate", "--alpha", "1", "--beta", "1", "--tau", "cheap"], "'cheap'"),
        ("allocate-method-choice", ["allocate", "--alpha", "1", "--beta", "1", "--method", "magic"], "'magic'"),
        ("experiment-no-out", ["experiment", "fee-sweep"], "--out"),
        ("experiment-replications-text", ["experiment", "fee-sweep", "--out", "@out", "--replications", "many"],
         "'many'"),
        ("chain-no-action", ["chain"], "action"),
        ("bench-no-name", ["bench"], "NAME"),
        ("seed-text", ["simulate", "--seed", "lucky"], "--seed: invalid int value: 'lucky'"),
        # abbreviations are not expanded: an error names what the user wrote
        ("simulate-abbreviated", ["simulate", "--round", "5"], "unrecognized arguments: --round 5"),
        ("select-abbreviated", ["select", "--schedules", "@good.json", "--hurdle", "3"], "--hurdle 3"),
        ("verify-unknown-option", ["verify", "--fast"], "unrecognized arguments: --fast"),
        ("chain-unknown-option", ["chain", "status", "--port", "9"], "unrecognized arguments: --port 9"),
        ("allocate-unknown-option", ["allocate", "--alpha", "1", "--beta", "1", "--fee", "2"], "--fee 2"),
    ):
        cases.append((case_id, argv, match))
    # the linear family's slopes: named, never an OverflowError
    for alpha_d, alpha_s, match in (
        ("1e-300", "1", "alpha_d = '1e-300'"), ("1", "1e-300", "alpha_s = '1e-300'"),
        ("1e300", "1", "alpha_d = '1e300'"), ("1e-99999999999", "1", "alpha_d = '1e-99999999999'"),
        ("1e-20", "1", "alpha_d = '1e-20'"), ("1", "1e-20", "a[1]"),
        ("0.0000000000000000000001", "1", "alpha_d"), ("1/99999999999999999999999999999", "1", "alpha_d"),
    ):
        cases.append((f"equilibria-linear-{alpha_d}-{alpha_s}",
                      ["equilibria", "--linear", "400", "460", alpha_d, alpha_s, "--grid", "10"], match))
    # over-long file names: usage errors naming the option, not "internal error: OSError"
    cases += [
        ("equilibria-plot-long-name", ["equilibria", "--linear", "400", "460", "1", "1", "--grid", "10",
                                       "--plot", f"{LONG_NAME}.png"], "--plot xxx"),
        ("simulate-plot-long-name", ["simulate", "--plot", LONG_NAME], "--plot xxx"),
        ("experiment-out-long-name", ["experiment", "fee-sweep", "--out", LONG_NAME], "--out xxx"),
        ("export-audit-long-name", ["export-audit", LONG_NAME], "has 300 bytes"),
        ("simulate-plot-long-path", ["simulate", "--plot", "/".join(["y" * 200] * 21)], "the limit is 4095"),
        # a schedule "file" that is a device, or too large to be a schedule
        ("equilibria-schedules-dev-zero", ["equilibria", "--schedules", "/dev/zero"], "not a regular file"),
        ("select-schedules-dev-zero", ["select", "--schedules", "/dev/zero"], "/dev/zero: not a regular file"),
        ("equilibria-schedules-2mb", ["equilibria", "--schedules", "@huge.json"], "larger than 1048576 bytes"),
    ]
    # allocation inputs: bounded (market.limits), so the float computation cannot overflow
    big, tiny = "1e308", "1e-308"
    for case_id, extra, match in (
        ("alpha-1e308", ["--alpha", big, big, "--beta", tiny, tiny, "--m", "1"], "--alpha[0] = 1e+308"),
        ("beta-1e-308", ["--alpha", "10", "--beta", tiny], "--beta = 1e-308"),
        ("beta-1e308", ["--alpha", "10", "--beta", big], "--beta = 1e+308"),
        ("m-1e12", ["--alpha", "10", "--beta", "1", "--m", "1e12"], "--m = 1000000000000.0"),
        ("tau-1e10", ["--alpha", "10", "--beta", "1", "--tau", "1e10"], "--tau = 10000000000.0"),
        ("g-inf", ["--alpha", "10", "--beta", "1", "--g", "inf"], "--g = inf"),
        ("eta-1e300", ["--alpha", "10", "--beta", "1", "--method", "adjust", "--eta", "1e300"], "--eta = 1e+300"),
        ("tol-1e-300", ["--alpha", "10", "--beta", "1", "--method", "adjust", "--tol", "1e-300"], "--tol = 1e-300: must be in 1e-15"),
        ("gamma-nan", ["--alpha", "10", "--beta", "1", "--method", "adjust", "--gamma", "nan"], "--gamma = nan"),
        ("noise-1e20", ["--alpha", "10", "--beta", "1", "--method", "adjust", "--noise", "1e20"], "--noise = 1e+20"),
        # options the chosen method would ignore
        ("bisection-step", ["--alpha", "10", "--beta", "1", "--step", "sqrt"], "--step sqrt: only for --method"),
        ("bisection-eta", ["--alpha", "10", "--beta", "1", "--eta", "0.1"], "--eta 0.1: only for --method"),
        ("bisection-max-iter", ["--alpha", "10", "--beta", "1", "--max-iter", "5"], "--max-iter 5: only for"),
        ("bisection-tol", ["--alpha", "10", "--beta", "1", "--tol", "0.001"], "--tol 0.001: only for"),
        ("bisection-gamma", ["--alpha", "10", "--beta", "1", "--gamma", "1"], "--gamma 1.0: only for"),
        ("bisection-noise", ["--alpha", "10", "--beta", "1", "--noise", "0.1"], "--noise 0.1: only for"),
        ("adjust-rpc", ["--alpha", "10", "--beta", "1", "--method", "adjust", "--rpc", "http://127.0.0.1:9"],
         "--rpc http://127.0.0.1:9: only for --method onchain"),
        ("onchain-reports", ["--alpha", "10", "--beta", "1", "--method", "onchain", "--reports", "3"],
         "--reports 3: only for --method adjust"),
    ):
        cases.append((f"allocate-{case_id}", ["allocate", *extra], match))
    cases += [
        # accepted-then-ignored options are refused
        ("experiment-fee-sweep-mode", ["experiment", "fee-sweep", "--out", "@out", "--mode", "join"],
         "--mode join: only participation-shock"),
        ("experiment-regret-mode", ["experiment", "regret", "--out", "@out", "--mode", "leave"], "--mode leave"),
        ("equilibria-seed", ["equilibria", "--linear", "400", "460", "1", "1", "--grid", "10", "--seed", "3"],
         "--seed 3: `repo-market equilibria` draws nothing at random"),
        ("select-seed", ["select", "--schedules", "@good.json", "--seed", "3"], "--seed 3"),
        ("verify-seed", ["verify", "--seed", "1"], "--seed 1"),
        ("chain-status-seed", ["chain", "status", "--seed", "2"], "--seed 2"),
        ("export-audit-seed", ["export-audit", "@out", "--seed", "2"], "--seed 2"),
        ("allocate-bisection-seed", ["allocate", "--alpha", "10", "--beta", "1", "--seed", "4"],
         "--seed 4: only for --method adjust"),
        # limits agree: a market's grid is MIN_MARKET_GRID..MAX_MARKET_GRID in demo, select and simulate
        ("simulate-protocol-grid-3", ["simulate", "--backend", "simulate", "--grid", "3"],
         f"--grid 3: must be in {M.MIN_MARKET_GRID}..{M.MAX_MARKET_GRID}"),
        ("simulate-protocol-grid-1", ["simulate", "--backend", "simulate", "--grid", "1"], "--grid 1"),
        ("select-circuit-grid-2", ["select", "--schedules", "@grid2.json", "--backend", "simulate"],
         f"volume grid 0..2; the circuit (--backend simulate) takes grids 0..{M.MIN_MARKET_GRID}"),
        ("select-fhe-grid-1", ["select", "--schedules", "@grid1.json", "--backend", "fhe"], "volume grid 0..1"),
        # errors name only the options the user gave
        ("demo-threshold-3-default-evaluators", ["demo", "--threshold", "3"],
         "--threshold 3: must not exceed the 2 evaluators (default --evaluators)"),
        ("simulate-rpc-default-backend", ["simulate", "--rpc", "http://127.0.0.1:9"], "(this run: the plain backend"),
        ("select-rate-bits-2", ["select", "--schedules", "@good.json", "--rate-bits", "2", "--backend", "plain"],
         "(2 bits) (--schedules"),
        ("select-hurdle-bits-above-default-rate-bits", ["select", "--schedules", "@good.json", "--hurdle-bits",
                                                        "12", "--backend", "plain"], "--hurdle-bits 12"),
    ]
    return cases


OPTION_CASES = _option_cases()


def test_the_catalogue_has_at_least_150_cases():
    assert len(OPTION_CASES) + len(MARKET_DIR_CASES) >= 150


def test_the_second_pass_adds_at_least_60_cases():
    added = len(_second_pass_cases()) + 2 * 7 + len(MALFORMED_NODE_CASES) + len(JSON_SHAPE_CASES) + 1
    assert added >= 60


@pytest.fixture(scope="module")
def inputs(protocol_root):
    d = protocol_root / "catalogue-inputs"
    files = _files(d)
    (d / "good.json").write_text(json.dumps(GOOD_JSON))
    wide = {"b": list(range(300, 300 + 66)), "a": list(range(500, 500 - 66, -1))}
    (d / "wide.json").write_text(json.dumps(wide))
    files["good.json"], files["wide.json"], files["out"] = d / "good.json", d / "wide.json", d / "out-folder"
    for n in (1, 2):
        path = d / f"grid{n}.json"
        path.write_text(json.dumps({"b": list(range(300, 300 + n + 1)), "a": list(range(320, 320 - n - 1, -1))}))
        files[path.name] = path
    return files


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _expand(argv, inputs):
    return [str(inputs[a[1:]]) if a.startswith("@") else a for a in argv]


@pytest.mark.parametrize("case_id,argv,match", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_bad_option_gets_a_clean_error_and_leaves_nothing(case_id, argv, match, inputs, scratch, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(scratch)  # the default data directory would be ./.repo-market: it must not appear either
    data = scratch / "data"
    argv = _expand(argv, inputs)
    full = argv + ["--data-dir", str(data)] if argv and argv[0] not in ("teleport",) else argv
    before = sorted(p.name for p in scratch.iterdir())
    code, out, err = run_cli(full, capsys)
    assert code not in (0, None), (code, out[-500:], err[-500:])
    assert "Traceback" not in out + err and "internal error" not in err
    assert match in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one clean line, never argparse's usage block
    if code == 2:
        assert lines[0].endswith("(see --help)") and ": error: " in lines[0], err
    assert not data.exists() and sorted(p.name for p in scratch.iterdir()) == before
    assert not inputs["out"].exists()


# --- bad data directories and an existing market left untouched ---------------------------------------------

def _market_dir_cases():
    return [
        ("demo-data-dir-is-a-file", "file", ["demo", "--backend", "simulate"], "not a directory"),
        ("verify-data-dir-is-a-file", "file", ["verify"], "not a directory"),
        ("chain-data-dir-is-a-file", "file", ["chain", "status"], "not a directory"),
        ("simulate-data-dir-is-a-file", "file", ["simulate", "--backend", "simulate", "--rounds", "1"],
         "not a directory"),
        ("verify-garbage-market-json", "garbage", ["verify"], "market.json"),
        ("demo-garbage-market-json", "garbage", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID)],
         "market.json"),
        ("verify-market-json-a-list", "list", ["verify"], "market.json"),
        ("demo-market-json-a-list", "list", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID)], "market.json"),
        ("verify-market-json-latin1", "latin1", ["verify"], "market.json"),
        ("demo-market-json-empty", "empty", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID)],
         "market.json"),
        ("demo-market-json-missing-keys", "partial", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID)],
         "market.json"),
        ("demo-other-grid", "market", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID + 2)],
         f"--grid {SIM_GRID + 2}"),
        ("demo-other-backend", "market", ["demo", "--backend", "fhe", "--grid", str(SIM_GRID)], "--backend fhe"),
        ("demo-market-evaluators-40", "market", ["demo", "--evaluators", "40"], "--evaluators 40"),
        ("demo-market-rpc-down", "market", ["demo", "--rpc", "http://127.0.0.1:9", "--grid", str(SIM_GRID)],
         "--rpc http://127.0.0.1:9"),
        ("verify-market-round-0", "market", ["verify", "--round", "0"], "--round 0"),
        ("demo-market-other-evaluators", "market", ["demo", "--evaluators", "3", "--threshold", "2"],
         "--evaluators 3: the market in --data-dir"),
        ("demo-market-other-threshold", "market", ["demo", "--threshold", "1"], "--threshold 1: the market"),
        ("verify-market-json-duplicate-key", "duplicate", ["verify"], "duplicate key 'backend'"),
        ("demo-market-json-duplicate-key", "duplicate", ["demo", "--backend", "simulate", "--grid", str(SIM_GRID)],
         "duplicate key 'backend'"),
    ]


MARKET_DIR_CASES = _market_dir_cases()


def _tree(path: Path) -> dict:
    """Every file's bytes; the writer lock file (created by the first writer, holds its pid) excepted."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))
            if p.name != "writer.lock"}


@pytest.mark.parametrize("case_id,kind,argv,match", MARKET_DIR_CASES, ids=[c[0] for c in MARKET_DIR_CASES])
def test_bad_data_directory_gets_a_clean_error_and_stays_as_it_was(case_id, kind, argv, match, sim_template,
                                                                  scratch, capsys):
    data = scratch / "data"
    if kind == "file":
        data.write_text("I am a file")
    elif kind == "market":
        shutil.copytree(sim_template, data, symlinks=True)
    else:
        data.mkdir()
        content = {"garbage": b"{not json", "list": b"[1, 2]", "latin1": '{"x": "\u00e9"}'.encode("latin-1"),
                   "empty": b"", "partial": b'{"backend": "simulate"}',
                   "duplicate": b'{"backend": "simulate", "backend": "fhe"}'}[kind]
        DataDir(data).market_file.write_bytes(content)
    before = _tree(data)
    code, out, err = run_cli(argv + ["--data-dir", str(data)], capsys)
    assert code not in (0, None) and "Traceback" not in out + err, (code, err[-1500:])
    assert match in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert _tree(data) == before


# --- the same dispatch as real processes ------------------------------------------------------------------

@pytest.mark.parametrize("argv,match", [
    (["equilibria", "--schedules", "@deep.json"], "nested"),
    (["equilibria", "--schedules", "@latin1.json"], "not UTF-8"),
    (["equilibria", "--schedules", "@near62.json"], "b[0] ="),
    (["select", "--schedules", "@good.json", "--rate-bits", "15"], "--rate-bits 15"),
    (["demo", "--grid", "100000"], "--grid 100000"),
    (["simulate", "--rounds", HUGE], f"--rounds {HUGE}"),
    (["simulate", "--rounds", "ten"], "argument --rounds: invalid int value: 'ten'"),
    (["allocate", "--alpha", "1e308", "--beta", "1"], "--alpha = 1e+308"),
    (["equilibria", "--linear", "400", "460", "1e-300", "1", "--grid", "10"], "alpha_d = '1e-300'"),
    (["equilibria", "--schedules", "@dup-b.json"], "duplicate key 'b'"),
    (["equilibria", "--schedules", "@digits-5000.json"], "5000 digits"),
], ids=["deep", "latin1", "near-2^62", "rate-bits", "demo-grid", "simulate-rounds", "rounds-ten", "alpha-1e308",
        "slope-1e-300", "duplicate-key", "5000-digits"])
def test_real_processes_exit_non_zero_without_a_traceback(argv, match, inputs, scratch):
    env = {k: v for k, v in os.environ.items() if k != "REPO_MARKET_DEBUG"}
    out = subprocess.run([sys.executable, "-m", "protocol", *_expand(argv, inputs), "--data-dir",
                          str(scratch / "data")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and match in out.stderr, out.stderr[-1500:]
    assert len(out.stderr.splitlines()) == 1 and out.stderr.rstrip().endswith("(see --help)") and out.stdout == ""
    assert not (scratch / "data").exists()


def test_rates_near_2_62_no_longer_return_a_wrong_equilibrium_set(inputs, capsys, scratch):
    """Today's overflow: int64 payoffs wrap and a wrong set comes back with exit 0. Now refused up front."""
    code, out, err = run_cli(["equilibria", "--schedules", str(inputs["near62.json"]), "--json",
                              "--data-dir", str(scratch / "d")], capsys)
    assert code == 2 and f"1..{limits.MAX_RATE_BP}" in err
    assert json.loads(out)["ok"] is False and "equilibria" not in json.loads(out)


# --- a node that answers nonsense: every value read from it is checked where it is read ---------------------

class _NonsenseNode:
    """A JSON-RPC server on 127.0.0.1 answering ``answers[method]`` (a reply dict, or raw text), else the
    ``"*"`` entry; a real HTTP server, so the project's real clients (urllib, web3) read its answers."""

    def __init__(self, answers: dict):
        import http.server
        import threading

        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- http.server's hook
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.methods.append(request.get("method") if isinstance(request, dict) else "batch")
                unknown = {"error": {"code": -32601, "message": "method not found"}}
                answer = answers.get(request.get("method"), answers.get("*", unknown)) \
                    if isinstance(request, dict) else answers.get("*", unknown)
                body = answer if isinstance(answer, str) else json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                                                          **answer})
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.methods: list = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


GOOD_CHAIN = {"eth_chainId": {"result": "0x7a69"}, "web3_clientVersion": {"result": "anvil/v1.0.0"}}
GOOD_BLOCK = {"number": "0x0", "hash": "0x" + "11" * 32, "parentHash": "0x" + "00" * 32, "timestamp": "0x1",
              "transactions": []}

# (id, answers, text the one error line must contain)
MALFORMED_NODE_CASES = [
    ("chain-id-0xzz", {"eth_chainId": {"result": "0xzz"}}, "eth_chainId answered '0xzz'"),
    ("chain-id-number", {"eth_chainId": {"result": 31337}}, "eth_chainId answered 31337"),
    ("chain-id-huge", {"eth_chainId": {"result": "0x" + "f" * 80}}, "expected a hex quantity"),
    ("chain-id-zero", {"eth_chainId": {"result": "0x0"}}, "eth_chainId answered '0x0'"),
    ("chain-id-null", {"eth_chainId": {"result": None}}, "eth_chainId answered None"),
    ("not-json", {"eth_chainId": "<html>hello</html>"}, "not JSON-RPC"),
    ("a-list", {"eth_chainId": "[1, 2]"}, "not a JSON-RPC reply"),
    ("result-and-error", {"eth_chainId": {"result": "0x1", "error": {"code": 1, "message": "x"}}},
     "not a JSON-RPC reply"),
    ("error-not-object", {"eth_chainId": {"error": "boom"}}, "malformed error 'boom'"),
    ("duplicate-keys", {"eth_chainId": '{"jsonrpc": "2.0", "id": 1, "result": "0x1", "result": "0x2"}'},
     "duplicate key 'result'"),
    ("version-number", {**GOOD_CHAIN, "web3_clientVersion": {"result": 7}}, "web3_clientVersion answered 7"),
    ("block-0xzz", {**GOOD_CHAIN, "*": {"result": "0xzz"}}, "eth_getBlockByNumber answered '0xzz'"),
    ("block-bad-hash", {**GOOD_CHAIN, "eth_getBlockByNumber": {"result": {**GOOD_BLOCK, "hash": "0x12"}}},
     "expected a block"),
    ("block-huge-number", {**GOOD_CHAIN, "eth_getBlockByNumber": {"result": {**GOOD_BLOCK, "number": "0x" + "f" * 64}}},
     "expected a block"),
    ("refuses-every-other-method", {**GOOD_CHAIN, "eth_getBlockByNumber": {"result": GOOD_BLOCK}},
     "method not found"),
    ("after-a-good-block", {**GOOD_CHAIN, "eth_getBlockByNumber": {"result": GOOD_BLOCK},
                            "*": {"result": "twelve"}}, "answered 'twelve'"),
]


@pytest.mark.parametrize("command", [
    ["demo", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1"],
    ["simulate", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1"],
    ["allocate", "--alpha", "10", "--beta", "1", "--method", "onchain"],
], ids=["demo", "simulate", "allocate"])
@pytest.mark.parametrize("case_id,answers,match", MALFORMED_NODE_CASES, ids=[c[0] for c in MALFORMED_NODE_CASES])
def test_a_node_answering_nonsense_gets_one_line_naming_the_method_and_value(case_id, answers, match, command,
                                                                          scratch, capsys):
    node = _NonsenseNode(answers)
    data = scratch / "data"
    try:
        code, out, err = run_cli([*command, "--rpc", node.url, "--data-dir", str(data), "--json"], capsys)
    finally:
        node.close()
    assert code in (1, 2) and "Traceback" not in out + err and "internal error" not in err, err
    # the failure is one line; a demo that got as far as its first steps logged them before it
    lines = [line for line in err.splitlines() if line.strip() and not re.search(r"\s\w+\.py:\d+$", line.rstrip())]
    assert len(lines) == 1 and match in lines[0] and node.url in lines[0], err
    doc = json.loads(out)
    assert set(doc) == {"ok", "error", "detail"} and doc["ok"] is False and match in doc["detail"]
    assert not data.exists()  # a fresh data directory is left as it was


def test_every_json_reader_refuses_the_same_documents(tmp_path):
    """One rule set (common/strict_json.py): it and chain's readers refuse alike."""
    from chain.accounts import load_keystore
    from chain.errors import ChainInputError
    from common import strict_json

    for text in ('{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}', '[{"k": 1, "k": 2}]', "9" * 1001,
                 '{"n": -' + "1" * 1001 + "}"):
        with pytest.raises(strict_json.JsonInputError) as refused:
            strict_json.loads(text)
        with pytest.raises(ChainInputError) as chain_refused:  # chain's keystore reader names the file too
            (tmp_path / "doc.json").write_text(text)
            load_keystore("dealer_mm", tmp_path / "doc.json", b"pw")
        assert str(chain_refused.value).endswith(str(refused.value))
    for text in ('{"a": 1, "b": {"a": 2}}', "9" * 1000, '[1.5, "x", null]'):
        assert strict_json.loads(text) == json.loads(text)


def test_a_keystore_with_a_repeated_key_is_refused(scratch):
    from chain.accounts import load_keystore
    from chain.errors import ChainInputError

    path = scratch / "ks.json"
    path.write_text('{"version": 3, "crypto": {}, "version": 3}')
    with pytest.raises(ChainInputError, match=r"--keystore dealer_mm=.*duplicate key 'version'"):
        load_keystore("dealer_mm", path, b"pw")


# --- one failure document ------------------------------------------------------------------------------------

# (id, argv, exit status): failures of every kind, each run with --json
JSON_SHAPE_CASES = [
    ("usage-argparse", ["simulate", "--rounds", "ten"], 2),
    ("usage-validate", ["demo", "--grid", "2"], 2),
    ("usage-unrecognized", ["verify", "--fast"], 2),
    ("usage-no-command", [], 2),
    ("usage-schedule", ["equilibria", "--schedules", "@dup-b.json"], 2),
    ("usage-allocate", ["allocate", "--alpha", "1e308", "--beta", "1"], 2),
    ("run-chain-up", ["chain", "up"], 1),
    ("run-node-nonsense", ["simulate", "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1",
                           "--rpc", "@nonsense"], 1),
    ("run-bench-fails", ["bench", "protocol", "--no-such-option"], 1),
]


@pytest.mark.parametrize("case_id,argv,status", JSON_SHAPE_CASES, ids=[c[0] for c in JSON_SHAPE_CASES])
def test_every_failure_prints_one_document_of_one_shape(case_id, argv, status, inputs, scratch, capsys,
                                                      monkeypatch):
    monkeypatch.setenv("REPO_MARKET_ANVIL", str(scratch / "no-such-anvil"))
    node = _NonsenseNode({"*": {"result": "0xzz"}, **GOOD_CHAIN})
    data = scratch / "data"
    try:
        argv = _expand([node.url if a == "@nonsense" else a for a in argv], inputs)
        full = ([argv[0], "--json", "--data-dir", str(data), *argv[1:]] if argv[0] == "bench"  # NAME ARGS... last
                else [*argv, "--json", "--data-dir", str(data)]) if argv else ["--json"]
        code, out, err = run_cli(full, capsys)
    finally:
        node.close()
    assert code == status, (code, err[-800:])
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert set(doc) == {"ok", "error", "detail"}, doc
    assert doc["ok"] is False and doc["error"] == ("usage error" if status == 2 else "error")
    assert isinstance(doc["detail"], str) and "\n" not in doc["detail"] and doc["detail"] in err
    assert [line for line in err.splitlines() if doc["detail"] in line], err
    assert not data.exists()
