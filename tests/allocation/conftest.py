"""The allocation tests mirror ``market/allocation/``: ``test_<module>.py`` per module, and ``test_cli.py`` for
the area's commands (``allocate``, ``experiment``); the Clearing contract and its agents are tested in
``tests/chain/test_clearing.py``. Fixture: one fee sweep (40 replications) shared by the modules that read it."""
from __future__ import annotations

import numpy as np
import pytest

from market.allocation import experiments


@pytest.fixture(scope="session")
def sweep():
    return experiments.fee_sweep(np.random.default_rng(0), replications=40)
