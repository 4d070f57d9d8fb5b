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
