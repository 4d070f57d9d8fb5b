"""Per-round public transcripts, the demo's round summaries (equilibria, outcome, profits, leakage) and plots.

The transcript (``transcripts/round-<n>.json``) is a convenience index of public data: every digest in it
is on chain or named by the custodian's attestation, and ``verify`` compares it with the chain.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.hex import to_hex
from common.plotting import pyplot, save_figure
from common.vocabulary import CUSTODIAN, DEALER_MM, DEALER_RM, SIDES
from market.equilibria import all_equilibria
from market.game import play
from market.selection import Instruction, select_equilibrium
from protocol.layout import ROUNDS_PLOT, TIMINGS_PLOT, write_json

if TYPE_CHECKING:
    from protocol.deployment import Deployment

__all__ = ["write_transcript", "transcript_fields", "history_anchors", "round_summary", "leakage_statement",
           "write_plots"]


def transcript_fields(dep: Deployment, rs, votes: dict) -> dict:
    """The transcript fields that the chain fixes (the auditor rebuilds them from the events and compares
    every one): phase, trade, digests, votes (evaluator address -> digest), records, forfeiture."""
    return {
        "round": rs.round_id,
        "phase": rs.phase.name,
        "trade": rs.trade,
        "digests": {
            "commitment_mm": to_hex(rs.report_commitment_mm), "commitment_rm": to_hex(rs.report_commitment_rm),
            "blob_commitment_mm": to_hex(rs.blob_commitment_mm), "blob_commitment_rm": to_hex(rs.blob_commitment_rm),
            "ciphertext_mm": to_hex(rs.ciphertext_digest_mm), "ciphertext_rm": to_hex(rs.ciphertext_digest_rm),
            "output": to_hex(rs.output_digest), "attestation": to_hex(rs.attestation_digest),
            "instruction_commitment": to_hex(rs.instruction_commitment),
        },
        "votes": {k: to_hex(v) for k, v in votes.items()},
        "records": {side: None if rs.record(side) is None else {"rate": rs.record(side).rate,
                                                                  "volume": rs.record(side).volume}
                    for side in SIDES},
        "forfeited": forfeiture(dep, rs),
    }


def history_anchors(dep: Deployment, round_id: int) -> dict:
    """Block number and hash of every transaction of the round, and of the head when the transcript is
    written: the auditor checks them against the node, so a rollback or a rewritten block is caught."""
    chain = dep.chain
    txs: dict[str, dict] = {}
    for e in dep.coordinator.events(round_id=round_id):
        entry = txs.setdefault(e.tx_hash, {"tx": e.tx_hash, "block": e.block_number,
                                           "block_hash": chain.block_hash(e.block_number), "events": []})
        entry["events"].append(e.name)
    head = chain.block_number
    return {"transactions": list(txs.values()), "chain_head": {"block": head, "block_hash": chain.block_hash(head)}}


def write_transcript(dep: Deployment, round_id: int, run: dict) -> dict:
    """Public transcript of a closed round: on-chain digests, records, forfeiture, history anchors, gas, timings."""
    coord = dep.coordinator
    transcript = {
        **transcript_fields(dep, coord.round(round_id), coord.output_votes(round_id)),
        **history_anchors(dep, round_id),
        "gas": run.get("gas", {}),
        "timings": run.get("timings", {}),
    }
    write_json(dep.data_dir.transcript(round_id), transcript)
    return transcript


def forfeiture(dep: Deployment, rs) -> dict | None:
    if rs.offender is None:
        return None
    return {"offender": dep.role_of(rs.offender) or rs.offender,
            "beneficiary": dep.role_of(rs.beneficiary) or rs.beneficiary,
            "amount": int(rs.forfeited_amount)}


def leakage_statement(selected: dict, holders: bool = False) -> dict:
    """What each party and the public learn in a round (MODEL.md §7); ``holders``: the market's key holders
    open the output from public shares (fhe), so whoever reads k table shares learns it when they are posted."""
    statement = _leakage(selected)
    if holders:
        statement["key_holders"] = ("their own key and slot shares; the public mask and table shares: the opened "
                                    "output, nothing more (no k of them collude)")
        statement["public"] += ("; with key holders, the opened output (instruction and invalid flags) from k "
                                "public table shares, as soon as they are posted")
    return statement


def _leakage(selected: dict) -> dict:
    if not selected["trade"]:
        return {
            DEALER_MM: f"no trade; nothing about {DEALER_RM}'s report beyond 'no feasible equilibrium'",
            DEALER_RM: f"no trade; nothing about {DEALER_MM}'s report beyond 'no feasible equilibrium'",
            "clients": "no offer",
            CUSTODIAN: "no report (dealers encrypt their own); the decrypted output: no trade, the invalid flags",
            "evaluators": "ciphertexts only (fixed-length), the output digest",
            "public": "commitments, digests, trade = false",
        }
    q, r_mm, r_rm, r_bd = selected["volume"], selected["r_mm"], selected["r_rm"], selected["r_bd"]
    return {
        DEALER_MM: f"Q = {q}, its rate r_mm = {r_mm}, r_bd = {r_bd}; hence 2·r_bd − r_mm = {r_rm} = r_rm, "
                     f"the other client's rate at the executed point",
        DEALER_RM: f"Q = {q}, its rate r_rm = {r_rm}, r_bd = {r_bd}; hence 2·r_bd − r_rm = {r_mm} = r_mm",
        "clients": "MM: the rate offered to it; RM: the rate offered to it (each accepts its own volume)",
        CUSTODIAN: "no report (dealers encrypt their own); the decrypted output: the selected outcome",
        "evaluators": "ciphertexts only (fixed-length), the output digest",
        "public": f"commitments, digests, trade = true; and, because the contract records each leg, "
                  f"the (rate, volume) each dealer records for its leg when it executes — under compliance "
                  f"({r_mm}, {q}) and ({r_rm}, {q}) [chain design]. "
                  f"Never: the reported schedules, hurdles, or any losing grid point",
    }


def selected_from_instruction(instr: dict) -> dict:
    """The JSON ``selected`` object from a dealer's opened instruction (r_bd may be a half bp)."""
    if not instr["trade"]:
        return {"trade": False, "volume": 0, "r_mm": 0, "r_rm": 0, "r_bd": 0, "joint_profit": 0}
    q, r_mm, r_rm = instr["volume"], instr["r_mm"], instr["r_rm"]
    return Instruction(True, q, r_mm, r_rm, instr["r_bd_x2"], (r_rm - r_mm) * q).as_dict()


def round_summary(dep: Deployment, round_id: int, plan, run: dict, ledger_round: dict | None,
                  instruction: dict) -> dict:
    """The demo's per-round record: equilibrium set of the TRUE schedules next to the selected outcome.

    ``instruction`` is what the custodian instructed (as opened by dealer_mm, who shows it for the demo;
    None when the round closed at a deadline before the custodian instructed);
    the plaintext reference ``select_equilibrium`` on the true schedules is printed next to it.
    """
    rs = dep.coordinator.round(round_id)
    schedules = plan.schedules()
    eq = all_equilibria(schedules)
    reference = select_equilibrium(schedules, plan.hurdle_mm, plan.hurdle_rm, dep.terms.hurdle_mode)
    transcript = write_transcript(dep, round_id, run)
    selected = selected_from_instruction(instruction or {"trade": False})
    executed = {"mm": transcript["records"]["mm"], "rm": transcript["records"]["rm"]}
    payoffs = None
    if executed["mm"] is not None:
        r_mm = executed["mm"]["rate"]
        r_rm = executed["rm"]["rate"] if executed["rm"] is not None else reference.r_rm
        p = play(schedules, r_mm, r_rm)
        payoffs = {"payoff_mm_x2": int(p.payoff_mm_x2), "payoff_rm_x2": int(p.payoff_rm_x2),
                   "note": "MODEL.md §3 payoffs (doubled, bp·units) at the executed rates with TRUE schedules"}
    jpm = eq.jpm
    return {
        "round": round_id,
        "label": plan.label,
        "inputs": {"theta_mm": plan.theta_mm, "theta_rm": plan.theta_rm, "hurdle_mm": plan.hurdle_mm,
                   "hurdle_rm": plan.hurdle_rm, "behaviour_mm": plan.behaviour_mm, "behaviour_rm": plan.behaviour_rm},
        "equilibria": {"count": len(eq), "volumes": [int(v) for v in eq.volumes],
                       "pareto": [[int(q), int(j)] for q, j in eq.pareto_ranking()],
                       "jpm": jpm.as_dict()},
        "selected": selected,
        "reference": reference.as_dict(),
        "matches_reference": selected == reference.as_dict(),
        "trade_on_chain": rs.trade,
        "phase": rs.phase.name,
        "executed": executed,
        "forfeited": transcript["forfeited"],
        "payoffs": payoffs,
        "ledger": ledger_round,
        "gas": run.get("gas", {}),
        "gas_total": sum(run.get("gas", {}).values()),
        "timings": run.get("timings", {}),
        "leakage": leakage_statement(selected, holders=bool(dep.holders)),
        "digests": transcript["digests"],
    }


def write_plots(rounds: list[dict], plans: list, out_dir: Path) -> list[str]:
    """PNG plots: J(Q) per round with the equilibrium range and the selected point; timings per round."""
    plt = pyplot()

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    n = len(rounds)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    for ax, r, plan in zip(axes[0], rounds, plans):
        s = plan.schedules()
        q = np.arange(s.grid + 1)
        ax.plot(q, s.joint_profit, color="0.5", lw=1, label="J(Q) (true)")
        vols = [v for v in r["equilibria"]["volumes"] if v > 0]
        if vols:
            ax.axvspan(min(vols), max(vols), color="tab:blue", alpha=0.12, label="equilibrium volumes")
        sel = r["selected"]
        if sel["trade"]:
            ax.plot([sel["volume"]], [sel["joint_profit"]], "o", color="tab:red", label="selected")
        ax.set_title(f"round {r['round']}: {r['label']}", fontsize=9)
        ax.set_xlabel("Q")
    axes[0][0].set_ylabel("joint profit (bp·units)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(str(save_figure(fig, out_dir / ROUNDS_PLOT, dpi=110)))

    keys = ["encrypt", "evaluate", "decrypt", "chain", "settle"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bottom = np.zeros(n)
    for k in keys:
        vals = np.array([r["timings"].get(k, 0.0) for r in rounds])
        ax.bar([str(r["round"]) for r in rounds], vals, bottom=bottom, label=k)
        bottom += vals
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    paths.append(str(save_figure(fig, out_dir / TIMINGS_PLOT, dpi=110)))
    return paths
