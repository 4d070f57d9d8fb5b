"""MODEL.md §8: the linear symmetric worked example, reproduced exactly (incl. the hurdle table)."""
from __future__ import annotations

import numpy as np
import pytest

from market import (
    HurdleMode,
    Instruction,
    NO_TRADE,
    equilibrium_volumes,
    joint_profit_maximiser,
    linear_schedules,
    select_equilibrium,
)


@pytest.fixture(scope="module")
def example():
    # D(r) = (r - 400)+, S(r) = (460 - r)+, one unit per bp, volume grid 0..30
    return linear_schedules(400, 460, 1, 1, 30)


def test_schedules_of_the_example(example):
    assert example.grid == 30
    assert example.b.tolist() == list(range(400, 431))
    assert example.a.tolist() == list(range(460, 429, -1))
    assert example.lend_volume([399, 400, 415, 430, 500]).tolist() == [0, 0, 15, 30, 30]
    assert example.borrow_volume([461, 460, 445, 430, 1]).tolist() == [0, 0, 15, 30, 30]


def test_joint_profit_maximum(example):
    q_star = joint_profit_maximiser(example)
    assert q_star == 15
    assert (int(example.b[15]), int(example.a[15])) == (415, 445)
    assert int(example.spread[15]) == 30
    assert int(example.joint_profit[15]) == 450
    assert int(example.joint_profit.max()) == 450


def test_equilibrium_volumes_are_0_to_20(example):
    assert equilibrium_volumes(example).tolist() == list(range(0, 21))
    assert (int(example.b[20]), int(example.a[20])) == (420, 440)
    # competitive volume: the spread closes at Q = 30
    assert int(np.flatnonzero(example.spread == 0)[0]) == 30


@pytest.mark.parametrize(
    "hurdle, expected",
    [
        (0, Instruction(True, 15, 415, 445, 860, 450)),
        (10, Instruction(True, 15, 415, 445, 860, 450)),
        (15, Instruction(True, 15, 415, 445, 860, 450)),
        (20, Instruction(True, 10, 410, 450, 860, 400)),
        (30, NO_TRADE),
    ],
)
def test_hurdle_table_interpretation_a(example, hurdle, expected):
    got = select_equilibrium(example, hurdle, hurdle)
    assert got == expected
    assert select_equilibrium(example, hurdle, hurdle, HurdleMode.MARGIN, equilibrium_filter=False) == expected
    if expected.trade:
        assert got.r_bd == 430
        assert got.as_dict() == {
            "trade": True, "volume": expected.volume, "r_mm": expected.r_mm,
            "r_rm": expected.r_rm, "r_bd": 430, "joint_profit": expected.joint_profit,
        }
    else:
        assert got.as_dict()["trade"] is False and got.volume == 0


def test_larger_hurdle_binds_when_they_differ(example):
    assert select_equilibrium(example, 0, 20).volume == 10
    assert select_equilibrium(example, 20, 0).volume == 10


@pytest.mark.parametrize("hurdle, volume", [(0, 15), (30, 15), (40, 10), (60, 0), (61, 0)])
def test_spread_mode(example, hurdle, volume):
    # option B compares the whole spread s(Q) = 60 - 2Q with the hurdle
    assert select_equilibrium(example, hurdle, hurdle, HurdleMode.SPREAD).volume == volume
    assert select_equilibrium(example, hurdle, hurdle, "spread").volume == volume


def test_half_bp_interdealer_rate():
    s = linear_schedules(400, 461, 1, 1, 30)
    got = select_equilibrium(s, 0, 0)
    assert got.r_bd_x2 == got.r_mm + got.r_rm
    assert got.r_bd_x2 % 2 == 1
    assert got.as_dict()["r_bd"] == got.r_bd_x2 / 2


def test_selection_doctest():
    import doctest

    import market.selection

    assert doctest.testmod(market.selection).failed == 0


@pytest.mark.parametrize("h_mm, h_rm, mode, fragment", [(-1, 0, "margin", "hurdle_mm = -1"),
                                                         (0, 2.5, "margin", "hurdle_rm = 2.5"),
                                                         (0, 0, "both", "hurdle mode = 'both'")])
def test_bad_hurdles(example, h_mm, h_rm, mode, fragment):
    from market import HurdleError

    with pytest.raises(HurdleError) as exc:
        select_equilibrium(example, h_mm, h_rm, mode)
    assert fragment in str(exc.value)


def test_market_imports_no_heavy_or_foreign_package():
    import subprocess
    import sys

    code = ("import sys, market; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('matplotlib', 'concrete', 'torch', 'web3', 'vyper', 'crypto', 'chain', 'protocol')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
