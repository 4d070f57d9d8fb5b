"""`repo-market allocate` and `repo-market experiment`: one JSON document, named errors, files written."""
from __future__ import annotations

import json

import pytest

from protocol.cli import main


def _json_out(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON document, nothing else


def test_allocate_worked_example_by_bisection(capsys):
    doc = _json_out(capsys, ["allocate", "--alpha", "10", "15", "20", "--beta", "1", "1", "1", "--tau", "0.5",
                             "--g", "0", "--m", "5", "--json"])
    for key in ("mu", "x", "efficiency", "gini", "jain", "participation", "binding", "iterations", "residuals"):
        assert key in doc
    assert doc["mu"] == pytest.approx(4.125, abs=1e-10)
    assert doc["x"] == pytest.approx([7 / 9, 5 / 3, 23 / 9], abs=1e-10)
    assert doc["efficiency"] == pytest.approx(38.336307, abs=1e-6)
    assert doc["gini"] == pytest.approx(32 / 135, abs=1e-10)
    assert doc["binding"] is True and doc["participation"] == 1.0


def test_allocate_by_price_adjustment_agrees(capsys):
    doc = _json_out(capsys, ["allocate", "--alpha", "8", "12", "16", "20", "--beta", "1", "2", "1.5", "0.5",
                             "--tau", "0.5", "--g", "0", "--m", "10", "--method", "adjust", "--tol", "1e-10",
                             "--json"])
    assert doc["converged"] is True
    assert doc["mu"] == pytest.approx(2.4053050822, abs=1e-7)
    assert set(doc["residuals"]) == {"primal", "dual", "report"}


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "10", "15", "--beta", "1"], "--alpha has 2 values but --beta has 1"),
    (["--alpha", "10", "-15", "--beta", "1", "1"], "--alpha[1] = -15.0"),
    (["--alpha", "10", "--beta", "1", "--m", "0"], "--m = 0.0"),
    (["--alpha", "10", "--beta", "1", "--tau", "-1"], "--tau = -1.0"),
    (["--alpha", "10", "--beta", "1", "--reports", "0", "--method", "adjust"], "--reports = 0"),
])
def test_allocate_bad_input_names_option_and_value(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["allocate", *argv, "--json"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.splitlines()) == 1
    assert json.loads(captured.out) == {"ok": False, "error": "usage error",
                                        "detail": captured.err.split(": error: ", 1)[1].strip()}


def test_experiment_writes_json_and_png(capsys, tmp_path):
    doc = _json_out(capsys, ["experiment", "fee-shock", "--replications", "3", "--out", str(tmp_path), "--json",
                             "--seed", "4"])
    data = json.loads((tmp_path / "fee-shock.json").read_text())
    assert data["experiment"] == "fee-shock" and data["seed"] == 4
    assert len(data["result"]["paths"]["mu"]["mean"]) == 100
    png = (tmp_path / "fee-shock.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["headline"]["resilience"] == pytest.approx(data["result"]["resilience"]["mean"])


def test_experiment_is_deterministic_per_seed(capsys, tmp_path):
    a = _json_out(capsys, ["experiment", "pareto", "--replications", "3", "--out", str(tmp_path / "a"),
                           "--no-plot", "--json"])
    b = _json_out(capsys, ["experiment", "pareto", "--replications", "3", "--out", str(tmp_path / "b"),
                           "--no-plot", "--json"])
    ra = json.loads((tmp_path / "a" / "pareto.json").read_text())["result"]
    rb = json.loads((tmp_path / "b" / "pareto.json").read_text())["result"]
    assert ra == rb and a["headline"] == b["headline"]


def test_experiment_unknown_name(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "moon-shot", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "NAME = 'moon-shot'" in capsys.readouterr().err


def test_allocate_on_chain(capsys, tmp_path):
    doc = _json_out(capsys, ["allocate", "--alpha", "10", "15", "20", "--beta", "1", "1", "1", "--tau", "0.5",
                             "--g", "0", "--m", "5", "--method", "onchain", "--eta", "0.5", "--gamma", "0",
                             "--tol", "1e-9", "--max-iter", "60", "--data-dir", str(tmp_path / "data"), "--json"])
    assert doc["converged"] is True and doc["iterations"] < 60
    assert doc["mu"] == pytest.approx(4.125, abs=1e-8)
    assert doc["max_deviation_from_float"] <= doc["fixed_point_bound"] == 1e-9
    assert doc["contract"].startswith("0x") and len(doc["gas_per_round"]) == doc["iterations"]


# --- numerically wrong results never exit 0 silently ----------------------------------------------------

def test_the_overflowing_example_is_refused_by_name_before_anything_runs(capfd):
    """`--alpha 1e308 1e308 --beta 1e-308 1e-308 --m 1` used to print numpy overflow warnings and report a
    bracket of 9.98e291 as a normal result."""
    with pytest.raises(SystemExit) as exc:
        main(["allocate", "--alpha", "1e308", "1e308", "--beta", "1e-308", "1e-308", "--m", "1"])
    out = capfd.readouterr()
    assert exc.value.code == 2 and out.out == ""
    assert out.err.strip() == "repo-market allocate: error: --alpha[0] = 1e+308: must be in 1e-09..1e+09 (see --help)"


@pytest.mark.parametrize("argv", [
    ["--alpha", "1e9", "1e9", "--beta", "1e-9", "1e-9", "--m", "1e-9", "--tau", "0", "--g", "0"],
    ["--alpha", "1e9", "1e-9", "--beta", "1e-9", "1e9", "--tau", "0", "--g", "1e9", "--m", "1e9"],
    ["--alpha", "1e-9", "--beta", "1e9", "--tau", "1e9", "--g", "1e9", "--m", "1e-9"],
], ids=["steep", "mixed", "flat"])
def test_the_extremes_of_the_limits_give_finite_converged_results_without_warnings(capfd, argv):
    assert main(["allocate", *argv, "--json"]) == 0
    out = capfd.readouterr()
    doc = json.loads(out.out)
    assert out.err == ""  # no numpy warnings
    assert doc["converged"] is True and doc["warnings"] == []
    assert all(abs(v) < float("inf") for v in [doc["mu"], doc["efficiency"], *doc["x"]])


def test_a_run_that_did_not_converge_is_flagged_in_the_json_and_the_table(capfd):
    argv = ["allocate", "--alpha", "10", "15", "20", "--beta", "1", "1", "1", "--method", "adjust", "--max-iter", "3"]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capfd.readouterr().out)
    assert doc["converged"] is False and doc["iterations"] == 3
    assert len(doc["warnings"]) == 1 and "not converged within --max-iter 3 rounds" in doc["warnings"][0]
    assert main(argv) == 0
    table = capfd.readouterr().out
    assert "NOT CONVERGED" in table and "--max-iter 3" in " ".join(table.split())


def test_float_events_are_recorded_not_printed(capfd):
    """The guard that turns an overflow inside the clearing into a NumericalFailure (exit 1) sees numpy's
    floating-point events without letting numpy print them."""
    import numpy as np

    from protocol.commands.allocate import _floating_point_events

    events: list[str] = []
    with _floating_point_events(events):
        big = np.array([1e308]) * 10
        zero = np.array([1.0]) / np.array([0.0])
    assert events == ["overflow", "divide by zero"] and np.isinf(big[0]) and np.isinf(zero[0])
    assert capfd.readouterr().err == ""
    with pytest.warns(RuntimeWarning, match="overflow"):  # outside the guard numpy's own setting is back
        np.array([1e308]) * 10
    assert events == ["overflow", "divide by zero"]
