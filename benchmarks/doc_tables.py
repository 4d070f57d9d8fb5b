"""Render the performance tables of README.md and docs/*.md from the benchmark JSON in bench-results/.

Every figure a doc shows comes from a benchmark JSON: a doc marks a generated region with

    <!-- bench-table: NAME -->
    ...generated, do not edit by hand...
    <!-- /bench-table -->

and ``python benchmarks/doc_tables.py`` rewrites every such region from ``RENDERERS[NAME]``;
``--check`` rewrites nothing and exits 1 naming each stale region (tests/test_docs.py runs it).

Why one file over 500 lines: it is a flat list of small renderers, one per region, sharing the formatting
helpers at the top; the RENDERERS table at the bottom is the index.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]
REGION = re.compile(r"(<!-- bench-table: (?P<name>[a-z0-9_-]+) -->\n)(?P<body>.*?)(<!-- /bench-table -->)", re.S)


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"bench_{name}.json").read_text())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _s(seconds: float, digits: int = 2) -> str:
    return f"{seconds:.{digits}f} s"


def _int(value: int) -> str:
    return f"{int(value):,}"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.0f} MB"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_equilibria() -> str:
    d = _load("equilibria")
    wanted = {200, 400, 1000, 2000}
    rows = [[f"{r['rate_points']} × {r['rate_points']}", _ms(r["exhaustive_best_s"]), _ms(r["d2_best_s"])]
            for r in d["results"] if r["rate_points"] in wanted]
    target = d["target"]
    note = (f"\nTarget: {target['rate_points']} × {target['rate_points']} within {target['limit_s']:g} s "
            f"(best {_ms(target['best_s'])}: {'met' if target['met'] else 'NOT met'}). Time grows like "
            f"n^{d['growth_exponent']:.1f} (an n × n bimatrix, vectorised); best of {d['repeats']}, load average "
            f"{d['machine']['load_average_1m']:.1f}.\n")
    return _table(["rate grid", "exhaustive best responses", "D2 locus test"], rows) + note


def render_chain() -> str:
    d = _load("chain")
    b = d["backends"]
    names = [n for n in ("embedded", "anvil") if n in b]
    t = d["targets"]
    rows = [
        ["gas per full round, first / later"] + [f"{_int(b[n]['round_gas_first'])} / {_int(b[n]['round_gas_steady'])}"
                                                  for n in names] + [f"≤ {_int(t['round_gas'])}"],
        ["seconds per round, median (range), excluding FHE"]
        + [f"{b[n]['round_s_median']:.2f} ({b[n]['round_s_best']:.2f}–{b[n]['round_s_max']:.2f})" for n in names]
        + [f"≤ {t['embedded_round_s']:g} / ≤ {t['anvil_round_s']:g}"],
    ]
    first = b[names[0]]
    calls = first["per_call_gas_steady_round"] | first["other_calls_gas"]
    per_call = "; ".join(f"{name} {_int(gas)}" for name, gas in calls.items())
    p = d["parameters"]
    extra = ""
    path = RESULTS / "bench_chain_3of3.json"
    if path.exists():
        k3 = json.loads(path.read_text())["backends"]["embedded"]
        extra = (f" With 3-of-3 evaluators a round costs {_int(k3['round_gas_steady'])} gas "
                 f"({_int(k3['round_gas_first'])} for the first).")
    path = RESULTS / "bench_chain_holders.json"
    if path.exists():
        h = json.loads(path.read_text())
        hp, hb = h["parameters"], h["backends"]["embedded"]
        n = hp["holders"]
        share = {stage: hb["per_call_gas_steady_round"][f"post_share ({stage}, {n} holders)"] // n
                 for stage in ("mask", "table")}
        extra += (f" With {hp['holder_threshold']}-of-{n} key holders, each posting its mask then its table share "
                  f"digest ({_int(share['mask'])} and {_int(share['table'])} gas a call), a round is "
                  f"{hb['transactions_per_round']} transactions and costs {_int(hb['round_gas_steady'])} gas "
                  f"({_int(hb['round_gas_first'])} for the first; {_s(hb['round_s_median'])} median on the embedded "
                  f"chain); deploy {_int(hb['deploy_gas'])}.")
    return (_table(["", *names, "target"], rows)
            + f"\nA round is {first['transactions_per_round']} transactions with k = {p['threshold']} of "
              f"n = {p['evaluators']} evaluators, {p['rounds']} rounds per backend.{extra} Per call (later rounds): "
              f"{per_call}; deploy {_int(first['deploy_gas'])}.\n")


def render_chain_reopen() -> str:
    r = _load("chain")["embedded_reopen"]
    per_entry = r["reopen_full_replay_s"] / r["journal_entries"]
    return (f"Reopening the embedded chain replays its journal: {r['journal_entries']} entries "
            f"({r['blocks']} blocks) took {_s(r['reopen_full_replay_s'], 1)} (~{_ms(per_entry)} per transaction); "
            f"from a snapshot, {_s(r['reopen_from_snapshot_s'])} plus the entries after it.\n")


def render_footprint() -> str:
    d = _load("footprint")
    s = d["sizes"]
    lines = [f"- `.venv`: {s['venv_bytes'] / 1e9:.1f} GB on disk (torch CPU and concrete-python are most of it); "
             f"`.tools/` (anvil, cast, node-tfhe): {_mb(s['tools_bytes'])}; the fixed-FFT-plan library "
             f"{_int(s['fixed_fft_plan_library_bytes'])} B."]
    t = _load("owner_encryption")["test_only"]
    lines.append(f"- The owner-encryption tests need no cached proof CRS: they generate a TEST-ONLY one "
                 f"({_int(t['crs_bytes'])} B) in {_s(t['crs_generation_s'], 0)} (docs/OWNER_ENCRYPTION.md).")
    c = d.get("clean_clone")
    if c:
        tests = ", ".join(f"{_int(n)} {word}" for word, n in sorted(c["tests"].items()))
        # runs before the suite's TEST-ONLY CRS recorded whether the production CRS was cached
        cached = ("" if "crs_cached_before" not in c else
                  "; production CRS cached" if c["crs_cached_before"] else "; production CRS generated during the run")
        lines.append(f"- Clean clone of `{c['commit'][:7]}` with `CI=true`: `scripts/setup.sh --with-anvil` "
                     f"(the first install) {c['setup_s'] / 60:.1f} min, `.venv` {c['clone_venv_bytes'] / 1e9:.1f} GB; "
                     f"then `bash .ci/run` {c['suite_s'] / 60:.1f} min, exit status {c['suite_exit_status']} "
                     f"({tests}{cached}; load average {c['load_average_1m']['before_suite']:.1f} "
                     f"at the start).")
    return "\n".join(lines) + "\n"


def render_fft_plan() -> str:
    d = _load("fft_plan")
    b = d["best_cpu_ms_per_pbs"]
    loads = [r["load_average_1m"] for records in d["samples"].values() for r in records]
    return (f"  The fixed plan costs {d['fixed_over_timed']:.2f}× the CPU time per PBS of the timed pick "
            f"({b['fixed']:.1f} vs {b['timed']:.1f} ms; {_int(d['lookups'])} 4-bit lookups, best of "
            f"{d['runs']} runs × {d['rounds']} alternating processes each, load average "
            f"{min(loads):.1f}–{max(loads):.1f}; `benchmarks/bench_fft_plan.py`).\n")


def render_allocation() -> str:
    d = _load("allocation")
    labels = {"bisection_1e6": "KKT equilibrium by bisection, n = 10^6 agents",
              "algorithm1_1e5_x1000": "Algorithm 1, n = 10^5, 1,000 iterations",
              "fee_sweep_1000": "fee sweep, 1,000 replications (21 fees × 5 mechanisms)"}
    rows = [[labels.get(t["name"], t["name"]), _s(t["best_s"]), _s(t["median_s"]), f"≤ {t['target_s']:g} s"]
            for t in d["timings"]]
    g = d["gas"]
    return (_table(["benchmark", "best", "median", "target"], rows)
            + f"\nOn-chain clearing, n = {g['agents']}: {_int(g['first_round_gas'])} gas in the first round, then "
              f"~{_int(g['steady_round_gas_median'])} per round (a demand report ~{_int(g['report_gas_median'])} "
              f"gas; the last report of a round, which also applies the price update, "
              f"~{_int(g['closing_report_gas_median'])}).\n")


# ---- docs/ALLOCATION_RESULTS.md §2–§5: benchmarks/bench_allocation_results.py -> bench_allocation_results.json

_MECHANISMS = {"no_enforcement": "no enforcement", "proportional": "proportional", "flat": "flat",
               "proposed": "proposed", "centralized": "centralized"}


def _pct(share: float) -> str:
    value = 100 * share
    return f"{value:.0f} %" if value >= 1 or value == 0 else f"{value:.1f} %"


def _e(value: float) -> str:
    """1e-08 as 1e-8."""
    return f"{value:g}".replace("e-0", "e-")


def _ordered(values: dict[str, float], fmt: Callable[[float], str], descending: bool = False) -> str:
    """``a 1.0 < b / c 2.0 < ...``: mechanisms by value, those equal as shown grouped with a slash."""
    groups: list[tuple[str, list[str]]] = []
    for name, value in sorted(values.items(), key=lambda kv: kv[1], reverse=descending):
        if groups and groups[-1][0] == fmt(value):
            groups[-1][1].append(_MECHANISMS[name])
        else:
            groups.append((fmt(value), [_MECHANISMS[name]]))
    return (" > " if descending else " < ").join(f"{' / '.join(names)} {text}" for text, names in groups)


def render_allocation_worked_example() -> str:
    w = _load("allocation_results")["onchain"]["worked_example_1"]
    a, c = w["algorithm1"], w["onchain"]
    return (f"Measured μ* on example 1: {w['bisection_mu']:.14g} by bisection; {a['mu']:.14g} by Algorithm 1 "
            f"(η = 1/L = {a['eta']:g}, γ = {a['gamma']:g}, tol {_e(a['tol'])}: {a['iterations']} rounds); "
            f"{c['mu']:.14g} on chain (η = {c['eta']:g}, γ = {c['gamma']:g}, tol {_e(c['tol'])}: the contract "
            f"declares convergence after {c['rounds']} rounds).\n")


def render_allocation_comparison() -> str:
    d = _load("allocation_results")
    runs = [d["experiments"]["fee-sweep"], d["experiments"]["fee-sweep-m50"]]
    rows = []
    for run in runs:
        c = run["comparison"]
        for name, r in c["mechanisms"].items():
            over = r["over_capacity_share"]
            rows.append([f"{c['m']:g}", _MECHANISMS[name], f"{r['efficiency']:.2f} ± {r['efficiency_ci95']:.2f}",
                         f"{r['gross_surplus']:.2f}", f"{r['gini']:.3f} ± {r['gini_ci95']:.3f}", f"{r['jain']:.3f}",
                         f"{r['participation']:.3f}",
                         "0" if over == 0 else f"{100 * over:.3g} %" + (" of draws" if over < 1 else "")])
    first, binding = runs[0]["comparison"], runs[1]["comparison"]
    eff = [r["efficiency"] for r in first["mechanisms"].values()]
    feasible = {k: r for k, r in binding["mechanisms"].items() if r["over_capacity_share"] == 0}
    m, n = first["m"], first["n"]
    return (_table(["m", "mechanism", "Eff", "Σ(V − C)", "Gini", "Jain", "participation", "over capacity"], rows)
            + f"\nn = {n}, τ = {first['tau']:g}, g = {first['g']:g}; {_int(runs[0]['replications'])} "
              f"replications, seed {d['seed']}; ± is the 95 % half-width. Capacity is slack at the equilibrium in "
              f"{100 * first['capacity_slack_share']:.1f} % of the draws at m = {m:g} "
              f"({100 * binding['capacity_slack_share']:.1f} % at m = {binding['m']:g}). At m = {m:g}, Eff per "
              f"agent ranges {min(eff) / n:.1f}–{max(eff) / n:.1f} over the mechanisms, per unit of capacity "
              f"{min(eff) / m:.1f}–{max(eff) / m:.1f}. At m = {binding['m']:g}, Σ(V − C) of the feasible "
              "mechanisms: "
              + _ordered({k: r["gross_surplus"] for k, r in feasible.items()}, lambda v: f"{v:.2f}")
              + "; Gini: " + _ordered({k: r["gini"] for k, r in binding["mechanisms"].items()},
                                      lambda v: f"{v:.3f}", descending=True) + ".\n")


def render_allocation_experiments() -> str:
    results = _load("allocation_results")
    e = results["experiments"]
    f, d, p = e["fee-sweep"], e["dashboard"], e["pareto"]
    fh, dh = f["headline"], d["headline"]
    binding = ", ".join(f"{_pct(v)} at τ = {t}" for t, v in f["binding_share_at"].items())
    ends = p["frontier_ends"]
    frontier = (f"frontier τ ∈ [{ends[0]['tau']:g}, {ends[1]['tau']:g}]" + ("" if p["frontier_contiguous"]
                                                                           else " (not contiguous)"))
    falls = d["fairness_falls_with_g_share"]
    rows = [
        ["fee-sweep", f"Eff {fh['efficiency_at_tau0']:.1f} → {fh['efficiency_at_tau_max']:.1f}, participation "
                      f"{fh['participation_at_tau0']:.3f} → {fh['participation_at_tau_max']:.3f} over τ ∈ "
                      f"[{f['taus'][0]:g}, {f['taus'][1]:g}]; Gini {f['gini_ends'][0]:.3f} at τ = {f['taus'][0]:g}, "
                      f"lowest {f['gini_min']:.3f} at τ = {f['gini_argmin_tau']:g}, {f['gini_ends'][1]:.3f} at "
                      f"τ = {f['taus'][1]:g}; binding share {binding}, 0 from τ = {f['binding_zero_from_tau']:g}"],
        ["dashboard", f"Eff {dh['efficiency_range'][0]:.0f}–{dh['efficiency_range'][1]:.0f} over τ ∈ "
                      f"[{d['taus'][0]:g}, {d['taus'][1]:g}] × g ∈ [{d['gs'][0]:g}, {d['gs'][1]:g}]; participation "
                      f"{dh['participation_range'][0]:.2f}–{dh['participation_range'][1]:.2f}; fairness falls with g "
                      + ("at every grid point" if falls == 1 else f"at {_pct(falls)} of the grid points")],
        ["pareto", f"{frontier}; (Eff, 1 − Gini) from ({ends[0]['efficiency']:.1f}, {ends[0]['fairness']:.3f}) at "
                   f"τ = {ends[0]['tau']:g} to ({ends[1]['efficiency']:.1f}, {ends[1]['fairness']:.3f}) at "
                   f"τ = {ends[1]['tau']:g}"],
    ]
    for key, label in (("fee-shock", "fee-shock"), ("participation-shock-leave", "participation-shock leave"),
                       ("participation-shock-join", "participation-shock join")):
        r = e[key]
        h = r["headline"]
        share = h["recovered_share"]
        settle = (f"all {r['replications']}" if share == 1 else _pct(share)) + \
            f" settle within {r['rounds_after_shock']} rounds"
        recovery = "no run settles" if h["recovery_time"] is None else f"recovery {h['recovery_time']:.1f} rounds"
        name = f"{label} {_pct(r['fraction'])}" if "fraction" in r else label
        rows.append([f"{name} (m = {r['m']:g})", f"R = {h['resilience']:.3f}, {recovery} ({settle}), regret "
                                                 f"{h['dynamic_regret']:.1f}"])
    for key, label in (("dynamic-demand", "α walk"), ("fee-volatility", "τ walk")):
        r = e[key]
        h = r["headline"]
        rows.append([f"{key} ({label}, σ = {r['sigma']:g}, from the initial equilibrium)",
                     f"tracking error \\|μ^t − μ*_t\\| = {h['tracking_error']:.3f}, Σ Eff / Σ Eff* = "
                     f"{h['efficiency_ratio']:.3f}, regret {h['dynamic_regret']:.3g}"])
    g, gc = e["regret"], e["regret-constant"]
    rows.append(["regret, η0/√t", f"R(T) = {', '.join(f'{v:.0f}' for v in g['regret'])} for T = "
                                  f"{g['horizons'][0]} … {g['horizons'][-1]}: **log-log slope "
                                  f"{g['headline']['slope']:.3f}**; constant η instead: slope "
                                  f"{gc['headline']['slope']:.1g}"])
    s = e["step-sweep"]
    sh = s["headline"]
    rows.append(["step-sweep", f"every run converges for η ≤ {sh['largest_all_converge_multiple']:.2g} × 2/L; "
                               f"the local bound 2/ℓ* (ℓ* = \\|S'(μ*)\\|) is on average "
                               f"{sh['local_bound_over_global']:.2f} × 2/L; the converge → diverge transition lies "
                               f"between {s['first_multiple_not_all_converge']:.2g} × 2/L (first run that does not "
                               f"converge) and {s['first_multiple_all_diverge']:.2g} × 2/L (every run diverges)"])
    order = ["fee-sweep", "dashboard", "pareto", "fee-shock", "participation-shock-leave", "participation-shock-join",
             "dynamic-demand", "fee-volatility", "regret", "step-sweep"]
    table = _table(["experiment", "replications", "result"],
                   [[row[0], _int(e[key]["replications"]), row[1]] for key, row in zip(order, rows)])
    seconds = sum(r["seconds"] for r in e.values())
    load = results["machine"]
    return table + (f"\nSeed {results['seed']}; all experiments together {_s(seconds, 0)}, the whole script with the "
                    f"on-chain runs {_s(results['wall_seconds'], 0)} ({load['cpus']} cores, load average "
                    f"{load['load_average_1m_before']:.1f}–{load['load_average_1m_after']:.1f}).\n")


def render_allocation_onchain() -> str:
    o = _load("allocation_results")["onchain"]
    t, w = o["twenty_agents"], o["worked_example_1"]["onchain"]
    return (f"Measured ({o['backend']} EVM): **{t['max_deviation_from_float']:.1e}** over {t['agents']} agents × "
            f"{t['rounds']} rounds, {w['max_deviation_from_float']:.1e} on worked example 1, where the contract "
            f"also declares convergence at μ = {w['mu']:.14g}; bound {_e(t['bound'])}.\n")


def render_protocol() -> str:
    d = _load("protocol")
    # "seal" (a dealer sealing its report to the custodian) exists only in runs before dealers encrypted their own
    stages = [s for s in ("seal", "encrypt", "evaluate", "open", "decrypt", "chain", "settle")
              if any(s in r for r in d["rounds"])]
    labels = {"seal": "seal (sign + AEAD)", "encrypt": "encrypt (both reports)",
              "evaluate": f"evaluate ({d['config']['evaluators']} evaluators)",
              "open": f"open ({d['config'].get('holders')} key holders: mask and table shares computed and posted)",
              "decrypt": "decrypt (combine the public shares), attest, seal the instructions",
              "chain": "chain transactions of commit, report, compute, decrypt",
              "settle": "both legs + challenge + settle (offers, acceptances, records, settle tx)"}
    rows = []
    for stage in stages:
        values = [r[stage] for r in d["rounds"] if stage in r]
        lo, hi = min(values), max(values)
        fmt = "{:.3f}" if hi < 0.1 else "{:.2f}"
        rows.append([labels[stage], fmt.format(lo) if fmt.format(lo) == fmt.format(hi)
                     else f"{fmt.format(lo)} – {fmt.format(hi)}"])
    c, v, s = d["config"], d["verify"], d["setup"]
    gas = [r["gas"] for r in d["rounds"]]
    m = d["machine"]
    return (_table(["stage", "seconds per round"], rows)
            + f"\nConfiguration: backend {c['backend']}, grid {c['grid']}, {c['rounds']} rounds, "
              f"{c['threshold']}-of-{c['evaluators']} evaluators, "
              + (f"{c['holder_threshold']}-of-{c['holders']} key holders, " if c.get("holders") else "")
              + "embedded chain, load average "
              f"{m['load_average_1m_before']:.1f}–{m['load_average_1m_after']:.1f}. Whole demo (including compile "
              f"{s['compile circuit']:.1f} s, key generation {s['generate FHE keys']:.1f} s, deploy "
              f"{s['deploy contract']:.1f} s and the closing independent `verify`): **{d['demo_seconds']:.0f} s** "
              f"(target ≤ {d['demo_target_seconds']} s). `verify` replaying every evaluation in a fresh process: "
              f"{v['seconds']:.1f} s for {v['evaluation_time_replayed']:.1f} s of evaluation it replays, "
              f"**{v['ratio']:.2f}×** (target ≤ {v['ratio_target']}×). Gas per round: {_int(min(gas))} to "
              f"{_int(max(gas))}.\n")


def render_fhe() -> str:
    """The shipped circuit (flat steps, exact per-Q survivor thresholds) next to the one before it, measured
    interleaved in one process."""
    d = _load("fhe")
    cmp = d["strict_vs_flat_steps"]
    rows = []
    for g in cmp["grids"]:
        old, new = g["old"], g["new"]
        flat = new.get("evaluate_flat")
        load = g["load_average_1m"]
        rows.append([str(g["grid"]), f"{_int(old['pbs_count'])} → {_int(new['pbs_count'])}",
                     f"{new['compile_s']:.0f} s", f"{new['keygen_s']:.1f} s",
                     f"{old['evaluate_strict']['mean']:.1f} s", f"{new['evaluate_strict']['mean']:.1f} s",
                     f"{flat['mean']:.1f} s" if flat else "—",
                     f"{g['ratio_new_over_old_strict_mean']:.2f}× (PBS {g['ratio_new_over_old_pbs']:.2f}×)",
                     _mb(new["evaluation_key_bytes"]), f"{load['min']:.0f}–{load['max']:.0f}"])
    table = _table(["N", "PBS before → now", "compile", "keygen", "evaluate before (strict)",
                    "evaluate now (strict)", "evaluate now (flat steps)", "now / before", "eval keys",
                    "load average"], rows)
    correct = all(g["new"]["correct"] == g["new"]["cases"] and g["old"]["correct"] == g["old"]["cases"]
                  for g in cmp["grids"])
    historic = [r for r in d["records"] if r.get("historic")]
    hist = ", ".join(sorted({r["formulation"] for r in historic}))
    rules = ", ".join(sorted({g.get("rule", "weak-monotone-1") for g in cmp["grids"]}))
    kept = (f" Earlier measurements of the new circuit ({', '.join(sorted({r['rule'] for r in cmp['superseded']}))}) "
            "stay in the JSON under \"superseded\"." if cmp.get("superseded") else "")
    return (table + f"\nEvery case decrypted to the plaintext reference: {'yes' if correct else 'NO'}. "
            f"\"before\" is the circuit of commit {cmp['grids'][0]['before_commit']} (strictly monotone reports only), "
            f"\"now\" the circuit of rule `{rules}`.{kept} "
            f"Formulations removed from the package ({hist}) keep their measured records in the JSON, "
            "marked historic.\n")


STEP_LABELS = {  # the rule's fhe.tag names (crypto/circuit/radix.py STEPS) as the doc names them
    "import": "import: to_native and the two range stages (5-bit lookups)",
    "steps": "neighbour comparisons, three-way (strict / flat / reversed step)",
    "invalid": "`invalid_mm`, `invalid_rm` (a digit out of range, a step reversed)",
    "spreads": "spreads s(Q)",
    "hurdle_mm": "hurdle test s(Q) >= c·h_mm",
    "hurdle_rm": "hurdle test s(Q) >= c·h_rm",
    "survive_mm": "survivor test s(Q) >= τ_mm(Q)",
    "survive_rm": "survivor test s(Q) >= τ_rm(Q)",
    "joint_digits": "J(Q) + 1 digit tables",
    "joint_carries": "J(Q) + 1 column carries",
    "cut_spreads": "no-cut test: cross spreads, both sides",
    "cut_products": "no-cut test: q · cross spread, tables",
    "cut_carries": "no-cut test: product carries",
    "cut_compare": "no-cut test: comparison with J(Q) + 1",
    "feasible": "f(Q): survivor and attainable",
    "trade": "`trade` (OR of the f(Q))",
    "joint_mask": "J'(Q) = f·(J(Q) + 1)",
    "tournament_compare": "tournament: comparisons",
    "tournament_select": "tournament: multiplexers",
    "one_hot": "one-hot winner",
    "output_rate": "output b̂[Q_sel] digits",
}


def render_fhe_steps() -> str:
    """PBS per step of the rule (concrete's count per fhe.tag) for each compiled grid, from a compile-only run."""
    d = _load("fhe")["pbs_per_step"]
    grids = [g for g in d["grids"] if g["rule"] == d["rule"]]
    steps = list(dict.fromkeys(tag for g in grids for tag in g["pbs_per_tag"]))
    rows = [[f"`{tag}`", STEP_LABELS.get(tag, "")] + [_int(g["pbs_per_tag"].get(tag, 0)) for g in grids]
            for tag in steps]
    untagged = [g["pbs_count"] - sum(g["pbs_per_tag"].values()) for g in grids]
    if any(untagged):
        rows.append(["(no tag)", "", *[_int(u) for u in untagged]])
    rows.append(["**total**", "", *[f"**{_int(g['pbs_count'])}**" for g in grids]])
    earlier = []
    for rule in sorted({g["rule"] for g in d["grids"]} - {d["rule"]}):
        totals = {g["grid"]: g["pbs_count"] for g in d["grids"] if g["rule"] == rule}
        earlier.append(f"rule `{rule}` had " + " / ".join(_int(totals[g["grid"]]) for g in grids if g["grid"] in totals))
    previous = {}  # the rule before, per grid, for the static cost rows
    for rule in sorted({g["rule"] for g in d["grids"]} - {d["rule"]}):
        previous = {g["grid"]: g for g in d["grids"] if g["rule"] == rule} or previous
    last_rule = sorted({g["rule"] for g in d["grids"]} - {d["rule"]})[-1] if previous else None

    def static(g, key, fmt):
        before = previous.get(g["grid"])
        return fmt(g) + (f" ({fmt(before)} in `{last_rule}`, {before['strategy']})" if before else "")

    rows.append(["complexity", "concrete's cost estimate", *[static(g, "complexity", lambda r: f"{r['complexity'] / 1e9:.0f} G")
                                                            for g in grids]])
    rows.append(["keys", "bootstrap + keyswitch keys", *[static(g, "keys", lambda r: _mb(
        r["bootstrap_key_bytes"] + r["keyswitch_key_bytes"])) for g in grids]])
    return (_table(["tag", "step", *[f"N = {g['grid']}" for g in grids]], rows)
            + f"\nCompiled only (static counts, load-independent), rule `{d['rule']}`, 10-bit offsets, "
              f"8-bit hurdles, margin mode, {' / '.join(sorted({g['strategy'] for g in grids}))} parameters."
            + (f" In total {'; '.join(earlier)} PBS (records kept in the JSON)." if earlier else "") + "\n")


def render_fhe_owner() -> str:
    """Issue 19: today's mono circuit against the owner-encrypted one, interleaved in one process per grid."""
    d = _load("fhe").get("owner_vs_mono")
    if not d:
        return "(not measured yet)\n"
    rows = []
    for g in d["grids"]:
        o, n = g["old_mono_custodian_encrypted"], g["new_owner_encrypted"]
        load = g["load_average_1m"]
        lever = ", ".join(f"{k} = {v}" for k, v in g["levers"].items()) or "none"
        rows.append([str(g["grid"]), lever, f"{_int(o['pbs_count'])} → {_int(n['pbs_count'])}",
                     f"{o['evaluate']['mean']:.1f} s", f"{n['evaluate']['mean']:.1f} s",
                     f"{g['ratio_evaluate_mean']:.2f}×", f"{_mb(o['evaluation_key_bytes'])} → "
                     f"{_mb(n['evaluation_key_bytes'])}", f"{o['keygen_s']:.0f} s → {n['keygen_s']:.0f} s",
                     f"{n['compile_s']:.0f} s", f"{load['min']:.1f}–{load['max']:.1f}"])
    correct = all(g["old_mono_custodian_encrypted"]["correct"] == g["runs"] and
                  g["new_owner_encrypted"]["correct"] == g["runs"] for g in d["grids"])
    return (_table(["N", "lever", "PBS today → owner", "evaluate today (mono)", "evaluate owner-encrypted",
                    "ratio", "eval keys", "keygen", "compile (owner)", "load average"], rows)
            + f"\nToday = commit {d['grids'][0]['before_commit']} (custodian-encrypted native inputs, mono "
              f"parameters); owner-encrypted = rule `{d['grids'][0]['rule']}` (tfhers inputs, multi parameters, "
              f"no-cut test in the circuit). Every output decrypted to the plaintext reference: "
              f"{'yes' if correct else 'NO'}.\n")


def render_audit() -> str:
    rows = []
    for name in ("audit", "audit_fhe"):
        d = _load(name)
        c = d["config"]
        for chain, r in d["chains"].items():
            ratio = r.get("ratio")
            rows.append([f"{c['backend']}, grid {c['grid']}", chain, str(r["checks"]), str(r["events"]),
                         _s(r["history_seconds"]), _s(r["seconds"], 1),
                         f"{r['evaluation_replayed']:.1f} s" if c["backend"] == "fhe" else "—",
                         f"{ratio:.3f}×" if ratio else "—",
                         f"{d['machine']['load_average_1m_before']:.0f}"])
    t = _load("audit")["targets"]
    return (_table(["market (4 rounds)", "chain", "checks", "events", "event + balance checks", "whole verify",
                    "evaluation replayed", "verify / evaluation", "load"], rows)
            + f"\nTargets: event and balance checks ≤ {t['history_seconds']:g} s; verify ≤ "
              f"{t['ratio_to_evaluation']:g}× the evaluation it replays.\n")


def render_owner_encryption() -> str:
    d = _load("owner_encryption")
    r, n = d["report"], d["noise"]
    b, t = r["best"], r["targets"]
    rows = [["report blob (ciphertexts + proof)", _int(b["blob_bytes"]) + " B", f"≤ {_int(t['blob_bytes'])} B"],
            ["dealer: encrypt + prove, node CPU", _s(b["prove_node_cpu_s"], 1), f"≤ {t['encrypt_prove_s']:g} s"],
            ["dealer: encrypt + prove, wall", _s(b["encrypt_prove_s"], 1), f"≤ {t['encrypt_prove_s']:g} s"],
            ["verifier: verify + expand, node CPU", _s(b["verify_node_cpu_s"], 1), f"≤ {t['verify_s']:g} s"],
            ["verifier: verify + expand, wall (incl. loading the CRS)", _s(b["verify_expand_s"], 1),
             f"≤ {t['verify_s']:g} s"],
            ["CRS", _mb(r["crs_bytes"]), ""]]
    if "report_verify_load" in d:  # tfhe-rs ZkComputeLoad.Verify moves work from the prover to every verifier
        v = d["report_verify_load"]["best"]
        rows += [["dealer: encrypt + prove, verify load, node CPU", _s(v["prove_node_cpu_s"], 1),
                  f"≤ {t['encrypt_prove_s']:g} s"],
                 ["verifier: verify + expand, verify load, node CPU", _s(v["verify_node_cpu_s"], 1),
                  f"≤ {t['verify_s']:g} s"]]
    if "crs" in d:
        k = d["crs"]
        rows.append([f"CRS generation (once per deployment), wall, load average {k['load_average_1m']['before']:.1f}",
                     _s(k["crs_generation_s"], 0), ""])
        if "crs_node_cpu_s" in k:
            rows.append(["CRS generation, node CPU", _s(k["crs_node_cpu_s"], 0), ""])
    if (RESULTS / "bench_fhe_strategies.json").exists():  # tfhers inputs need concrete's "multi" strategy (§1)
        by = {r["strategy"]: r for r in _load("fhe_strategies")["records"]}
        mono, multi = by["mono"], by["multi"]
        rows.append([f"circuit N = {multi['grid']} with `multi` parameters (needed for tfhers inputs), before any "
                     f"import: evaluation, same run as `mono`",
                     f"{_s(multi['timings']['evaluate_mean'], 1)} vs {_s(mono['timings']['evaluate_mean'], 1)} "
                     f"({multi['timings']['evaluate_mean'] / mono['timings']['evaluate_mean']:.2f}×); keys "
                     f"{_mb(multi['sizes']['evaluation_keys'])} vs {_mb(mono['sizes']['evaluation_keys'])}",
                     "≤ 1.3× `mono`"])
    if "zk_v2" in d:  # the newest prover on the npm registry; its parameters cannot feed concrete 2.11
        z = d["zk_v2"]
        rows += [[f"node-tfhe {z['node_tfhe']}, ZK v2, d = 2048: prove, node CPU",
                  _s(z["prove_cpu_ms_proof_load"] / 1000, 1), f"≤ {t['encrypt_prove_s']:g} s"],
                 [f"node-tfhe {z['node_tfhe']}, ZK v2, d = 2048: CRS", _mb(z["crs_bytes"]), ""]]
    return (_table([f"N = {r['points']} ({r['digits']} digits)", "measured", "target"], rows)
            + f"\nNoise: {_int(n['digits'])} owner-encrypted digits through a first lookup in real FHE, "
              f"{n['errors_after_first_lookup']} errors (failure probability per digit < {n['p_fail_upper_95']:g} at "
              f"95 % confidence; concrete's own p_error for that circuit {n['concrete_p_error']:.1e}); encryption "
              f"noise std 2^{n['encryption_noise_std_log2']:.1f} against a decision margin of "
              f"2^{n['decision_margin_log2']}. Load average {r['runs'][0]['load_average_1m']:.0f} during the report run.\n")


def render_simulate() -> str:
    """`select --backend simulate` per grid: the compile every run paid before, today's first run and later runs."""
    d = _load("simulate")
    rows = [[str(r["grid"]), _s(r["before_process_s"], 1), _s(r["first_s"], 1), _s(r["cached_s"], 1)]
            for r in d["results"]]
    return _table(["N", "before: the simulation's compile alone, paid by every run", "first run (compiles, saves)",
                   "later runs (load the saved simulator)"], rows) + (
        f"\nWall clock of a fresh process each, imports included; every run selected what `--backend plain` "
        f"selects. Load average {d['machine']['load_average_1m']:.1f}.\n")


def render_node() -> str:
    """An idle anvil's CPU and state file against its blocks: the old periodic dump next to today's node."""
    d = _load("node")
    rows = [[_int(a["blocks"]), _pct(a["idle_cpu_share"]), f"{a['state_bytes'] / 1e6:.1f} MB",
             _pct(b["idle_cpu_share"]), _s(b["save_s"])]
            for a, b in zip(d["interval"], d["on_demand"])]
    return _table(["blocks", f"idle CPU, dump every {d['interval_s']} s (before)", "state file",
                   "idle CPU, dump on exit and per command (now)", "one save (now)"], rows) + (
        f"\nShare of one core over {d['window_s']:g} s idle, {d['anvil']}, empty blocks mined with `anvil_mine`, "
        f"load average {d['machine']['load_average_1m']:.1f}. The file holds the state of every past block "
        f"(`--preserve-historical-states`), each with the hashes of the blocks before it, so it grows "
        f"quadratically with the chain.\n")


def render_owner_encryption_default() -> str:
    """docs/OWNER_ENCRYPTION.md §7: the default path (unproven lists) and the TEST-ONLY proof path."""
    d = _load("owner_encryption")
    records, t = d["unproven"]["records"], d["test_only"]
    header = ["unproven, production parameters"] + [f"N = {r['points']} ({r['digits']} digits)" for r in records]
    rows = [["dealer: seal, wall (median)"] + [_ms(r["seal_s"]["median"]) for r in records],
            ["dealer: seal, node CPU (median)"] + [_ms(r["seal_node_cpu_s"]["median"]) for r in records],
            ["blob"] + [_int(r["blob_bytes"]) + " B" for r in records],
            ["verifier: open (checks + expand), wall (median)"] + [_ms(r["open_s"]["median"]) for r in records],
            ["import buffer (kept local)"] + [_int(r["import_buffer_bytes"]) + " B" for r in records]]
    loads = [r["load_average_1m"]["before"] for r in records]
    return (_table(header, rows)
            + f"\nMedian of {records[0]['repeats']} reports each, load average "
              f"{'–'.join(sorted({f'{x:.1f}' for x in loads}))}. "
              f"TEST-ONLY set `{t['parameters']}` ({t['encryption_dimension']}-dimension keys, {t['crs_max_digits']} "
              f"digits per proof): CRS generated in {_s(t['crs_generation_s'], 1)} ({_int(t['crs_bytes'])} B), seal + "
              f"prove {_s(t['seal_prove_s'], 1)}, open + verify {_s(t['open_verify_s'], 1)} for {t['digits']} digits "
              f"(blob {_int(t['blob_bytes'])} B; load average {t['load_average_1m']['before']:.1f}).\n")


def render_threshold() -> str:
    d = _load("threshold")
    t, b, e = d["timings_s"], d["bytes"], d["encoding"]
    rows = [[f"output values per round (N = {d['grid']})", f"{d['output_values']} (width {e['width']} bits, LWE n = "
             f"{_int(e['lwe_dimension'])})"],
            ["table width k (switch bits)", f"{d['switch_bits']} ({1 << d['switch_bits']:,} entries per value and share)"],
            ["mask share, per holder per round", _ms(t["mask_share_per_holder"]["median"])],
            ["table share, per holder per round", _ms(t["table_share_per_holder"]["median"])],
            ["combination (anyone, e.g. the auditor)", _ms(t["combine"]["median"])],
            ["dealer, per slot (all 3 holders)", _ms(t["deal_slots_per_slot"])],
            ["key-share file, per holder", f"{_int(b['key_share_file_per_holder'])} B"],
            ["stored per holder per decryption (one slot)", f"{_int(b['slot_file_per_holder_per_decryption'])} B"],
            [f"stored per holder, market of {b['market_rounds']} rounds", _mb(b["holder_total_for_market"])],
            ["share blob, mask / table", f"{_int(b['share_blob']['mask'])} B / {_int(b['share_blob']['table'])} B"],
            ["published per holder per round (both blobs)", f"{_int(b['published_per_holder_per_round'])} B"]]
    load = d["machine"]["load_average_1m"]
    note = (f"\n2-of-3, all three holders answering, medians of {t['mask_share_per_holder']['samples']} holder answers; "
            f"{d['checked_equal_to_concrete']} openings each equal to concrete's own decryption; {d['circuit']}; "
            f"{d['machine']['cpus']} cores, load average {load['before']:.1f} before, {load['after']:.1f} after.\n")
    return _table(["quantity", "measured"], rows) + note


RENDERERS: dict[str, Callable[[], str]] = {
    "equilibria": render_equilibria,
    "chain": render_chain,
    "chain_reopen": render_chain_reopen,
    "footprint": render_footprint,
    "fft_plan": render_fft_plan,
    "allocation": render_allocation,
    "allocation_worked_example": render_allocation_worked_example,
    "allocation_comparison": render_allocation_comparison,
    "allocation_experiments": render_allocation_experiments,
    "allocation_onchain": render_allocation_onchain,
    "protocol": render_protocol,
    "fhe": render_fhe,
    "fhe_steps": render_fhe_steps,
    "fhe_owner": render_fhe_owner,
    "audit": render_audit,
    "owner_encryption": render_owner_encryption,
    "node": render_node,
    "simulate": render_simulate,
    "owner_encryption_default": render_owner_encryption_default,
    "threshold": render_threshold,
}


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every marked region regenerated, and the names of regions whose content changed."""
    stale: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"bench-table {name!r}: no renderer (known: {', '.join(RENDERERS)})")
        body = RENDERERS[name]()
        if body != match.group("body"):
            stale.append(name)
        return match.group(1) + body + match.group(4)

    return REGION.sub(replace, text), stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a region is stale")
    args = parser.parse_args(argv)
    problems = []
    for path in DOCS:
        text = path.read_text()
        new, stale = render(text)
        if stale:
            problems += [f"{path.relative_to(ROOT)}: bench-table {name} is stale" for name in stale]
            if not args.check:
                path.write_text(new)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if (problems and args.check) else 0


if __name__ == "__main__":
    raise SystemExit(main())
