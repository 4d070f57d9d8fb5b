"""JSON and PNG output of the allocation experiments (``repo-market experiment`` / ``allocate``).

The experiments themselves are pure functions in :mod:`market.allocation.experiments`; this module turns
their numpy results into JSON documents (written atomically) and one PNG figure per experiment.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from common.plotting import pyplot, save_figure
from protocol.blobstore import atomic_write

__all__ = ["to_jsonable", "write_result", "plot_experiment", "headline"]


def to_jsonable(obj):
    """numpy arrays/scalars to lists/numbers; NaN and ±inf to None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def write_result(path: Path, document: dict) -> None:
    atomic_write(Path(path), (json.dumps(to_jsonable(document), indent=2, sort_keys=True) + "\n").encode())


def headline(name: str, result: dict) -> dict:
    """The few numbers a person looks at first, per experiment."""
    pick = {}
    if name == "fee-sweep":
        prop = result["baselines"]["proposed"]
        pick = {"efficiency_at_tau0": prop["efficiency"]["mean"][0],
                "efficiency_at_tau_max": prop["efficiency"]["mean"][-1],
                "participation_at_tau0": prop["participation"]["mean"][0],
                "participation_at_tau_max": prop["participation"]["mean"][-1]}
    elif name in ("fee-shock", "participation-shock"):
        pick = {"resilience": result["resilience"]["mean"],
                "recovery_time": None if result["recovery_time"] is None else result["recovery_time"]["mean"],
                "recovered_share": result["recovered_share"],
                "dynamic_regret": result["dynamic_regret"]["mean"]}
    elif name in ("dynamic-demand", "fee-volatility"):
        pick = {k: result[k]["mean"] for k in ("tracking_error", "efficiency_ratio", "dynamic_regret")}
    elif name == "regret":
        pick = {"slope": result["slope"], "regret_at_largest_T": result["regret"]["mean"][-1]}
    elif name == "step-sweep":
        c = np.asarray(result["multiples_of_2_over_L"])
        conv = np.asarray(result["converged_share"])
        pick = {"largest_all_converge_multiple": float(c[conv == 1.0].max()) if np.any(conv == 1.0) else None,
                "local_bound_over_global": result["local_bound_over_global"]["mean"]}
    elif name == "pareto":
        pick = {"frontier_taus": np.asarray(result["taus"])[np.asarray(result["frontier"])]}
    elif name == "dashboard":
        pick = {"efficiency_range": [float(np.min(result["efficiency"])), float(np.max(result["efficiency"]))],
                "participation_range": [float(np.min(result["participation"])),
                                        float(np.max(result["participation"]))]}
    return to_jsonable(pick)


# ---- plots -------------------------------------------------------------------------------------------------

def _band(ax, t, summary, label, **kw):
    mean = np.asarray(summary["mean"], dtype=float)
    half = np.asarray(summary["ci95"], dtype=float)
    line, = ax.plot(t, mean, label=label, **kw)
    ax.fill_between(t, mean - half, mean + half, color=line.get_color(), alpha=0.2)


def _plot_fee_sweep(fig, r):
    taus = r["taus"]
    axes = fig.subplots(2, 2)
    for ax, metric, title in zip(axes.flat, ("efficiency", "gini", "participation", "average_total_cost"),
                                 ("Efficiency", "Gini (zeros included)", "Participation", "Average total cost")):
        for name, row in r["baselines"].items():
            _band(ax, taus, row[metric], name)
        ax.set_title(title); ax.set_xlabel("τ")
    axes[0, 0].legend(fontsize=7)


def _plot_dashboard(fig, r):
    taus, gs = np.asarray(r["taus"]), np.asarray(r["gs"])
    axes = fig.subplots(2, 2)
    ext = [gs[0], gs[-1], taus[0], taus[-1]]
    im = axes[0, 0].imshow(r["efficiency"], origin="lower", aspect="auto", extent=ext)
    fig.colorbar(im, ax=axes[0, 0]); axes[0, 0].set_title("Efficiency surface")
    im = axes[0, 1].imshow(r["fairness"], origin="lower", aspect="auto", extent=ext, cmap="Greens")
    gg, tt = np.meshgrid(gs, taus)
    axes[0, 1].quiver(gg, tt, r["fairness_gradient_g"], r["fairness_gradient_tau"], color="k", alpha=0.6)
    fig.colorbar(im, ax=axes[0, 1]); axes[0, 1].set_title("1 − Gini and its gradient")
    sc = axes[1, 0].scatter(np.ravel(r["efficiency"]), np.ravel(r["fairness"]),
                            c=np.ravel(r["participation"]), cmap="viridis", s=12)
    fig.colorbar(sc, ax=axes[1, 0], label="participation")
    axes[1, 0].set_xlabel("Efficiency"); axes[1, 0].set_ylabel("1 − Gini"); axes[1, 0].set_title("Pareto map")
    im = axes[1, 1].imshow(r["elasticity_tau"], origin="lower", aspect="auto", extent=ext, cmap="magma")
    fig.colorbar(im, ax=axes[1, 1]); axes[1, 1].set_title("Fee elasticity of demand (τ/S)·dS/dτ")
    for ax in (axes[0, 0], axes[0, 1], axes[1, 1]):
        ax.set_xlabel("g"); ax.set_ylabel("τ")


def _plot_pareto(fig, r):
    ax = fig.subplots()
    sc = ax.scatter(r["efficiency"], r["fairness"], c=r["taus"], cmap="coolwarm", s=18)
    front = np.asarray(r["frontier"])
    eff, fair = np.asarray(r["efficiency"]), np.asarray(r["fairness"])
    order = np.argsort(eff[front])
    ax.plot(eff[front][order], fair[front][order], "k-", lw=1, label="frontier")
    fig.colorbar(sc, ax=ax, label="τ")
    ax.set_xlabel("Efficiency"); ax.set_ylabel("1 − Gini"); ax.legend()


def _plot_dynamic(fig, r, marker=None):
    paths = r["paths"]
    t = np.arange(len(paths["mu"]["mean"]))
    axes = fig.subplots(1, 3)
    _band(axes[0], t, paths["mu"], "μ^t"); _band(axes[0], t, paths["mu_star"], "μ*_t", ls="--")
    _band(axes[1], t, paths["eff"], "Eff^t"); _band(axes[1], t, paths["eff_star"], "Eff*_t", ls="--")
    _band(axes[2], t, paths["participation"], "participation")
    for ax, title in zip(axes, ("Price", "Efficiency", "Participation")):
        ax.set_title(title); ax.set_xlabel("round")
        if marker is not None:
            ax.axvline(marker, color="grey", ls=":")
        ax.legend(fontsize=7)


def _plot_regret(fig, r):
    ax = fig.subplots()
    h = np.asarray(r["horizons"], dtype=float)
    mean = np.asarray(r["regret"]["mean"], dtype=float)
    ax.loglog(h, mean, "o-", label=f"dynamic regret (slope {r['slope']:.2f})")
    ax.loglog(h, mean[0] * np.sqrt(h / h[0]), "k--", label="√T reference")
    ax.set_xlabel("T"); ax.set_ylabel("Σ D_t(μ^t) − D_t(μ*_t)"); ax.legend()


def _plot_step_sweep(fig, r):
    ax = fig.subplots()
    c = np.asarray(r["multiples_of_2_over_L"])
    ax.semilogx(c, r["converged_share"], "o-", label="converges")
    ax.semilogx(c, r["oscillating_share"], "s-", label="oscillates")
    ax.semilogx(c, r["diverged_share"], "^-", label="diverges")
    ax.axvline(1.0, color="k", ls="--", label="η = 2/L")
    ax.axvline(float(r["local_bound_over_global"]["mean"]), color="grey", ls=":", label="mean 2/ℓ*")
    ax.set_xlabel("η / (2/L)"); ax.set_ylabel("share of replications"); ax.legend()


def plot_experiment(name: str, result: dict, path: Path) -> None:
    fig = pyplot().figure(figsize=(11, 7) if name in ("fee-sweep", "dashboard") else (12, 4) if "paths" in result
                     else (6.5, 4.5))
    if name == "fee-sweep":
        _plot_fee_sweep(fig, result)
    elif name == "dashboard":
        _plot_dashboard(fig, result)
    elif name == "pareto":
        _plot_pareto(fig, result)
    elif name == "regret":
        _plot_regret(fig, result)
    elif name == "step-sweep":
        _plot_step_sweep(fig, result)
    else:
        _plot_dynamic(fig, result, result.get("shock_at"))
    fig.suptitle(f"{name} (n = {result.get('n')}, replications = {result.get('replications')})")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
