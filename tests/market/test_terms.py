"""Market terms and report validation (before anything is encrypted, signed or sent)."""
from __future__ import annotations

import numpy as np
import pytest

from market import HurdleMode, MarketTerms, ReportError, report_offsets, validate_report


@pytest.fixture
def terms():
    return MarketTerms(grid=4, base_rate=380, rate_bits=7, hurdle_bits=5)


def test_as_dict_is_ints_and_strings(terms):
    d = terms.as_dict()
    assert d == {"grid": 4, "base_rate": 380, "rate_bits": 7, "hurdle_bits": 5, "hurdle_mode": "margin"}
    assert all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in d.values())
    assert MarketTerms(4, 380, hurdle_mode="spread").hurdle_mode is HurdleMode.SPREAD


def test_weakly_monotone_reports_with_flat_steps_pass(terms):
    validate_report(terms, "mm", [400, 400, 402, 402, 402], 0)  # MM lends 2 units at 400 bp
    validate_report(terms, "rm", [460, 460, 460, 450, 450], 3)
    assert report_offsets(terms, "mm", [400, 400, 401, 401, 401]).tolist() == [20, 20, 21, 21, 21]


def test_valid_reports_pass(terms):
    validate_report(terms, "mm", [400, 401, 402, 405, 507], 31)
    validate_report(terms, "rm", np.array([460, 455, 454, 450, 380]), 0)
    assert report_offsets(terms, "mm", [400, 401, 402, 405, 507]).tolist() == [20, 21, 22, 25, 127]


@pytest.mark.parametrize(
    "side, schedule, hurdle, fragment",
    [
        ("mm", [400, 401, 402, 403], 0, "b: 4 rates"),
        ("mm", [400, 402, 401, 403, 404], 0, "b[2] = 401"),
        ("rm", [460, 455, 456, 450, 440], 0, "a[2] = 456"),
        ("mm", [400, 402, 401, 403, 404], 0, "b[2] = 401 after b[1] = 402: reported b must be nondecreasing in Q"),
        ("rm", [460, 455, 450, 451, 440], 0, "a[3] = 451 after a[2] = 450: reported a must be nonincreasing in Q"),
        ("mm", [400, 401, 402, 403, 508], 0, "b[4] = 508: offset 128"),
        ("rm", [460, 455, 450, 440, 379], 0, "a[4] = 379: offset -1"),
        ("mm", [400, 401, 402.0, 403, 404], 0, "b[2] = 402.0"),
        ("mm", [400, 401, 402, 403, 404], 32, "hurdle = 32"),
        ("mm", [400, 401, 402, 403, 404], -1, "hurdle = -1"),
        ("mm", [400, 401, 402, 403, 404], 1.5, "hurdle = 1.5"),
        ("xx", [400, 401, 402, 403, 404], 0, "side = 'xx'"),
    ],
)
def test_report_errors(terms, side, schedule, hurdle, fragment):
    with pytest.raises(ReportError) as exc:
        validate_report(terms, side, schedule, hurdle)
    assert fragment in str(exc.value)


def test_zero_rate_rejected_even_at_zero_base():
    with pytest.raises(ReportError, match=r"b\[0\] = 0"):
        validate_report(MarketTerms(grid=1, base_rate=0), "mm", [0, 1], 0)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [(dict(grid=0), "terms.grid"), (dict(base_rate=-1), "terms.base_rate"),
     (dict(rate_bits=0), "terms.rate_bits"), (dict(hurdle_mode="both"), "terms.hurdle_mode"),
     (dict(grid=2.0), "terms.grid")],
)
def test_bad_terms(kwargs, fragment):
    with pytest.raises(ReportError, match=fragment):
        MarketTerms(**(dict(grid=4, base_rate=380) | kwargs))
