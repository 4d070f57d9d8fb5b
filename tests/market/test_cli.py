"""`repo-market equilibria` and `repo-market simulate`: JSON contract, errors, plots."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = {"b": list(range(400, 431)), "a": list(range(460, 429, -1))}


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    code = "import sys; from protocol.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT)


def run_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON document


@pytest.fixture
def example_file(tmp_path):
    path = tmp_path / "example.json"
    path.write_text(json.dumps(EXAMPLE))
    return path


def test_equilibria_worked_example_json(capsys, example_file):
    doc = run_json(capsys, "equilibria", "--schedules", str(example_file), "--json",
                   "--hurdle-mm", "20", "--hurdle-rm", "20")
    assert doc["equilibrium_volumes"] == list(range(21))
    assert doc["largest_volume"] == 20
    assert doc["jpm"] == {"trade": True, "volume": 15, "r_mm": 415, "r_rm": 445, "r_bd": 430, "joint_profit": 450}
    assert doc["selected"] == {"trade": True, "volume": 10, "r_mm": 410, "r_rm": 450, "r_bd": 430, "joint_profit": 400}
    assert {"r_mm": 420, "r_rm": 440, "volume": 20} in doc["equilibria"]
    assert all(set(e) == {"r_mm", "r_rm", "volume"} for e in doc["equilibria"])
    assert doc["rate_grid"] == {"min": 399, "max": 461, "points": 63}
    assert doc["methods_agree"] is True
    assert doc["competitive_volume"] == 30


def test_equilibria_linear_matches_file_and_closed_form(capsys, example_file):
    linear = run_json(capsys, "equilibria", "--linear", "400", "460", "1", "1", "--grid", "30", "--json")
    table = run_json(capsys, "equilibria", "--schedules", str(example_file), "--json")
    for key in ("equilibrium_volumes", "equilibria", "jpm", "largest_volume", "selected"):
        assert linear[key] == table[key]
    assert linear["closed_form"] == {"q_star": 15.0, "s_star": 30.0, "j_star": 450.0, "q_bar": 20.0, "q_competitive": 30.0}


def test_equilibria_no_trade_with_high_hurdle_spread_mode(capsys):
    doc = run_json(capsys, "equilibria", "--linear", "400", "460", "1", "1", "--grid", "30",
                   "--hurdle-mm", "61", "--hurdle-mode", "spread", "--json")
    assert doc["selected"]["trade"] is False and doc["selected"]["volume"] == 0


def test_equilibria_subprocess_and_plot(tmp_path, example_file):
    png = tmp_path / "map.png"
    out = run_cli("equilibria", "--schedules", str(example_file), "--json", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["selected"]["volume"] == 15
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_human_table(capsys, example_file):
    assert main(["equilibria", "--schedules", str(example_file)]) == 0
    out = capsys.readouterr().out
    assert "JPM" in out and "415" in out and "contract's selection" in out


@pytest.mark.parametrize(
    "content, fragments",
    [
        ('{"b": [400, 402, 401, 403], "a": [460, 450, 440, 430]}', ["--schedules", "b[2] = 401", "row Q=2"]),
        ('{"b": [400, 401], "a": [460, 450, 440]}', ["b has 2 rows and a has 3"]),
        ('{"b": [400, 401.5], "a": [460, 450]}', ["b[1] = 401.5"]),
    ],
)
def test_equilibria_bad_schedule_file_exits_nonzero(tmp_path, content, fragments):
    path = tmp_path / "bad.json"
    path.write_text(content)
    out = run_cli("equilibria", "--schedules", str(path), "--json")
    assert out.returncode == 2
    doc = json.loads(out.stdout)  # with --json a usage error is one failure document too
    assert doc["ok"] is False and doc["error"] == "usage error" and doc["detail"] in out.stderr
    for fragment in fragments:
        assert fragment in out.stderr


def test_equilibria_bad_csv_names_the_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Q,b,a\n0,400,460\n1,401,459\n2,399,458\n")
    out = run_cli("equilibria", "--schedules", str(path))
    assert out.returncode == 2 and "row Q=2" in out.stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--linear", "400", "460", "1", "1"], "--grid"),
        (["--linear", "400", "460", "1", "1", "--grid", "30", "--hurdle-mm", "-1"], "--hurdle-mm -1"),
        (["--linear", "4x0", "460", "1", "1", "--grid", "30"], "R_LO = '4x0'"),
        (["--linear", "400", "460", "0", "1", "--grid", "30"], "alpha_d = '0'"),
        (["--linear", "400", "460", "1", "1", "--grid", "30", "--plot", "map.jpg"], "--plot map.jpg"),
    ],
)
def test_equilibria_usage_errors(argv, fragment):
    out = run_cli("equilibria", *argv)
    assert out.returncode == 2
    assert fragment in out.stderr


def test_simulate_json_and_plots(capsys, tmp_path):
    doc = run_json(capsys, "simulate", "--rounds", "12", "--seed", "4", "--grid", "20", "--json",
                   "--plot", str(tmp_path / "plots"))
    assert doc["seed"] == 4 and doc["config"]["rounds"] == 12 and doc["backend"] == "plain"
    assert len(doc["rounds"]) == 12
    r = doc["rounds"][0]
    assert {"equilibrium_volumes", "jpm_volume", "contract", "none", "theta_mm", "theta_rm"} <= set(r)
    assert {"volume", "lend", "borrow", "profit_mm", "profit_rm", "surplus_mm", "surplus_rm"} <= set(r["contract"])
    assert doc["summary"]["contract"]["mean_total_surplus"] > doc["summary"]["none"]["mean_total_surplus"]
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in doc["plots"])
    again = run_json(capsys, "simulate", "--rounds", "12", "--seed", "4", "--grid", "20", "--json")
    assert again["rounds"] == doc["rounds"]


def test_simulate_bad_rounds():
    out = run_cli("simulate", "--rounds", "0")
    assert out.returncode == 2 and "--rounds 0" in out.stderr


def test_equilibria_refuses_a_huge_rate_grid(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text(json.dumps({"b": [100, 101], "a": [9000, 50]}))
    out = run_cli("equilibria", "--schedules", str(path))
    assert out.returncode == 2 and "rates span 50..9000 bp" in out.stderr


def test_equilibria_flat_schedules_report_unmatched_ties(capsys):
    # alpha_d = 2 gives flat runs of b; the exhaustive set gains zero-margin ties, D2 stays exact on the locus
    doc = run_json(capsys, "equilibria", "--linear", "400", "420", "2", "1", "--grid", "10", "--json")
    assert doc["strict"] is False
    assert set(doc["d2_volumes"]) <= set(doc["equilibrium_volumes"])
    assert doc["selected"]["volume"] in doc["d2_volumes"]
