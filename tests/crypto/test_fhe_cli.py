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


def test_flat_steps_are_accepted_and_selected_like_the_enumeration(capsys, tmp_path):
    """Flat steps: MM lends 2 units at 300 bp, RM's schedule is flat too: plain and simulate agree with the
    selection read off the exhaustive enumeration (the attainable J-argmax Q = 6 fails D2 here: Q = 4)."""
    from market import make_schedules
    from tests.market.oracle import enumerated_selection

    flat = {"b": [304, 304, 307, 307, 307, 308, 310], "a": [319, 319, 319, 319, 319, 318, 318]}
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(flat))
    args = ("--schedules", path, "--hurdle-mm", 4, "--hurdle-rm", 6, "--hurdle-mode", "spread",
            "--data-dir", tmp_path)
    plain = _select(capsys, *args, "--backend", "plain")
    simulated = _select(capsys, *args, "--backend", "simulate")
    want = enumerated_selection(make_schedules(flat["b"], flat["a"]), 4, 6, "spread").as_dict()
    assert plain["selected"] == simulated["selected"] == want
    assert want["volume"] == 4


def test_a_reversed_step_is_still_a_usage_error(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"b": [304, 306, 305], "a": [319, 318, 317]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "--schedules", str(path), "--backend", "plain", "--data-dir", str(tmp_path), "--json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err  # the schedule loader refuses it first, naming file, field, row and values
    assert "bad.json" in err and "b[2] = 305 < b[1] = 306 (row Q=2)" in err and "must be nondecreasing" in err


def test_linear_schedules_with_several_units_per_bp(capsys, tmp_path):
    """`equilibria --linear` with alpha = 2 (flat steps): the selection equals the enumeration's, and the same
    schedules are accepted by `select`."""
    from market import linear_schedules
    from tests.market.oracle import enumerated_selection

    assert main(["equilibria", "--linear", "400", "460", "2", "2", "--grid", "60", "--hurdle-mm", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    s = linear_schedules(400, 460, 2, 2, 60)
    assert not s.strict
    assert doc["selected"] == enumerated_selection(s, 10, 0, "margin").as_dict()
    path = tmp_path / "linear.json"
    path.write_text(json.dumps(s.as_dict()))
    assert _select(capsys, "--schedules", path, "--hurdle-mm", 10, "--backend", "plain",
                   "--data-dir", tmp_path)["selected"] == doc["selected"]
