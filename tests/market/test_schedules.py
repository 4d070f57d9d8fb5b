"""Schedule construction and validation: clear errors naming field, row and value."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from market import ScheduleError, Schedules, apply_theta, linear_schedules, load_schedules, make_schedules


def test_make_schedules_round_trip():
    s = make_schedules([400, 401, 403], [460, 455, 455])
    assert s.grid == 2
    assert s.b.dtype == np.int64 and s.a.dtype == np.int64
    assert s == make_schedules(np.array([400, 401, 403]), np.array([460, 455, 455]))
    assert s.as_dict() == {"b": [400, 401, 403], "a": [460, 455, 455]}
    with pytest.raises(ValueError):
        s.b[0] = 1  # read-only


@pytest.mark.parametrize(
    "b, a, fragment",
    [
        ([400, 402, 401], [460, 450, 440], "b[2] = 401"),
        ([400, 401, 402], [460, 450, 451], "a[2] = 451"),
        ([400, 0, 402], [460, 450, 440], "b[1] = 0"),
        ([400, 401, 402], [460, -5, -6], "a[1] = -5"),
        ([400, 401.5, 402], [460, 450, 440], "b[1] = 401.5"),
        ([400, 401, 402], [460, 450, True], "a[2] = True"),
        ([400, 401, 402], [460, 450], "b has 3 rows and a has 2"),
        ([], [], "empty"),
        ([400], [460], "N >= 1"),
    ],
)
def test_validation_names_field_row_value(b, a, fragment):
    with pytest.raises(ScheduleError) as exc:
        make_schedules(b, a)
    assert fragment in str(exc.value)


def test_non_monotone_message_names_the_row():
    with pytest.raises(ScheduleError, match=r"row Q=2.*nondecreasing"):
        make_schedules([400, 402, 401], [460, 450, 440])


def test_linear_inverse_is_the_lowest_rate_reaching_the_volume():
    s = linear_schedules(400, 460, 2, Fraction(1, 2), 10)
    # b[Q] = 400 + ceil(Q/2), a[Q] = 460 - 2Q
    assert s.b.tolist() == [400 + -(-q // 2) for q in range(11)]
    assert s.a.tolist() == [460 - 2 * q for q in range(11)]
    # D(r) = floor(2 (r - 400)+), S(r) = floor((460 - r)+ / 2) on every integer rate
    rates = np.arange(380, 480)
    assert s.lend_volume(rates).tolist() == [min(10, max(0, 2 * (r - 400))) for r in rates]
    assert s.borrow_volume(rates).tolist() == [min(10, max(0, (460 - r) // 2)) for r in rates]
    for q in range(11):  # b[Q] = min{r : D(r) >= Q}
        assert int(s.b[q]) == int(rates[np.flatnonzero(s.lend_volume(rates) >= q)[0]]) or q == 0


def test_linear_float_alpha_is_read_exactly():
    assert linear_schedules(400, 460, 0.5, 0.1, 5) == linear_schedules(400, 460, Fraction(1, 2), Fraction(1, 10), 5)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(r_lo=0), "r_lo = 0"),
        (dict(r_hi=400), "r_hi = 400"),
        (dict(alpha_d=0), "alpha_d = 0"),
        (dict(alpha_s=-1), "alpha_s = -1"),
        (dict(grid=0), "grid = 0"),
        (dict(grid=500), "a[460] = 0"),
        (dict(r_lo=400.5), "r_lo = 400.5"),
    ],
)
def test_linear_parameter_errors(kwargs, fragment):
    params = dict(r_lo=400, r_hi=460, alpha_d=1, alpha_s=1, grid=30) | kwargs
    with pytest.raises(ScheduleError) as exc:
        linear_schedules(**params)
    assert fragment in str(exc.value)


def test_attainable_marks_flat_runs():
    s = make_schedules([400, 401, 401, 402], [460, 450, 440, 440])
    # Q=1: b flat (D(401) = 2); Q=2: a flat (S(440) = 3); Q=3 = N
    assert s.attainable.tolist() == [True, False, False, True]
    assert s.lend_volume([401]).tolist() == [2]
    assert s.borrow_volume([440]).tolist() == [3]


def test_apply_theta_shifts_one_side():
    s = linear_schedules(400, 460, 1, 1, 30)
    assert apply_theta(s, "mm", 5) == linear_schedules(405, 460, 1, 1, 30)
    assert apply_theta(s, "rm", -7) == linear_schedules(400, 453, 1, 1, 30)
    with pytest.raises(ScheduleError, match="side"):
        apply_theta(s, "xx", 1)
    with pytest.raises(ScheduleError, match="b\\[0\\] = -100"):
        apply_theta(s, "mm", -500)


def test_load_json_and_csv(tmp_path):
    doc = {"b": [400, 401, 402], "a": [460, 459, 458]}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    (tmp_path / "s.csv").write_text("Q,b,a\n0,400,460\n1,401,459\n2,402,458\n")
    assert load_schedules(tmp_path / "s.json").as_dict() == doc
    assert load_schedules(tmp_path / "s.csv").as_dict() == doc


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("bad.json", '{"b": [400, 402, 401], "a": [460, 459, 458]}', "b[2] = 401"),
        ("bad.json", '{"b": [400, 401]}', '"b" and "a"'),
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.csv", "Q,b,a\n0,400,460\n1,399,459\n", "row Q=1"),
        ("bad.csv", "Q,b,a\n0,400,460\n1,4x1,459\n", "b = '4x1' (row Q=1)"),
        ("bad.csv", "Q,b,a\n0,400,460\n2,401,459\n", "Q = 2"),
        ("bad.csv", "q,lo,hi\n0,1,2\n", "header"),
        # the limits of market.limits, checked before any int64 arithmetic
        ("big.json", '{"b": [400, 401], "a": [1048576, 459]}', "a[0] = 1048576: rates must be in 1..1048575 bp"),
        ("deep.json", "[[[[[[[[[1]]]]]]]]]", "JSON nested more than 8 levels deep"),
        ("long.json", '{"b": [' + ",".join(["400"] * 4002) + '], "a": [460]}', "b has 4002 rates"),
        ("big.csv", "Q,b,a\n0,400,99999999999999999999\n", "rate 99999999999999999999: rates must be in"),
    ],
)
def test_load_errors_name_file_and_row(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScheduleError) as exc:
        load_schedules(path)
    assert str(exc.value).startswith(f"{path}: ") and fragment in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ScheduleError, match="cannot read"):
        load_schedules(tmp_path / "nope.json")


def test_direct_construction_validates():
    with pytest.raises(ScheduleError):
        Schedules(b=np.array([3, 2]), a=np.array([5, 4]))


def test_load_refuses_a_folder_and_bytes_that_are_not_utf8(tmp_path):
    with pytest.raises(ScheduleError, match="not a regular file"):
        load_schedules(tmp_path)
    path = tmp_path / "s.json"
    path.write_bytes(b'{"b": [\xff]}')
    with pytest.raises(ScheduleError, match=r"not UTF-8 text \(byte 0xff at offset 7\)"):
        load_schedules(path)
