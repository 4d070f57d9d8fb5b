"""`repo-market select`: plain and simulated backends agree with the worked example; bad input is a usage error."""
from __future__ import annotations

import json

import pytest

from protocol.cli import main

# MODEL.md §8 on a short grid: D(r) = (r - 400)+, S(r) = (460 - r)+, Q = 0..6 (strictly monotone).
SCHEDULES = {"b": [400, 401, 402, 403, 404, 405, 406], "a": [460, 459, 458, 457, 456, 455, 454]}


@pytest.fixture()
def schedule_file(tmp_path):
    path = tmp_path / "reports.json"
    path.write_text(json.dumps(SCHEDULES))
    return path


def _select(capsys, *argv):
    assert main(["select", *map(str, argv), "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_plain_backend_gives_the_selected_object(capsys, schedule_file, tmp_path):
    doc = _select(capsys, "--schedules", schedule_file, "--backend", "plain", "--data-dir", tmp_path)
    # s(Q) = 60 - 2Q, J = Q(60 - 2Q) increasing on 0..6: Q = 6, r_mm 406, r_rm 454
    assert doc["selected"] == {"trade": True, "volume": 6, "r_mm": 406, "r_rm": 454, "r_bd": 430, "joint_profit": 288}
    assert doc["backend"] == "plain" and "evaluate" in doc["timings"]


def test_simulate_backend_matches_plain_with_hurdles(capsys, schedule_file, tmp_path):
    args = ("--schedules", schedule_file, "--hurdle-mm", 25, "--hurdle-rm", 3, "--data-dir", tmp_path)
    plain = _select(capsys, *args, "--backend", "plain")
    simulated = _select(capsys, *args, "--backend", "simulate")
    assert simulated["selected"] == plain["selected"]
    assert plain["selected"]["volume"] == 5  # margin: s/2 >= 25 keeps s >= 50, i.e. Q <= 5
    assert simulated["backend"] == "simulate"


def test_bad_hurdle_is_a_usage_error_naming_the_option(capsys, schedule_file, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "--schedules", str(schedule_file), "--hurdle-mm", "300", "--backend", "plain",
              "--data-dir", str(tmp_path), "--json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "hurdle = 300" in err and "--hurdle-mm 300" in err
