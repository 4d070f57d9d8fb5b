"""Hypothesis strategies: random monotone schedules (with flat runs) on small grids."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from market import make_schedules


@st.composite
def monotone_schedules(draw, max_grid: int = 10, max_step: int = 6, allow_flats: bool = True):
    """b nondecreasing, a nonincreasing, rates >= 2 bp; spreads may turn negative at high volume."""
    n = draw(st.integers(1, max_grid))
    low = 0 if allow_flats else 1
    b_steps = draw(st.lists(st.integers(low, max_step), min_size=n, max_size=n))
    a_steps = draw(st.lists(st.integers(low, max_step), min_size=n, max_size=n))
    b0 = draw(st.integers(2, 40))
    a0 = b0 + draw(st.integers(-5, 60))
    b = b0 + np.concatenate([[0], np.cumsum(b_steps)])
    a = a0 - np.concatenate([[0], np.cumsum(a_steps)])
    a = a - min(0, int(a.min()) - 2)  # every rate >= 2 bp, so 1 bp lies below the grid
    return make_schedules(b.astype(np.int64), a.astype(np.int64))


hurdles = st.integers(0, 40)
modes = st.sampled_from(["margin", "spread"])
