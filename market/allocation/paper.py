"""Figures reported in Cha et al. (arXiv 2510.05504 v1), shipped as "paper-reported" fixtures.

They cannot be reproduced from the paper's stated formulas and defaults (ALLOCATION.md §3): with
``V = α·log(1 + x)``, α ~ U(5, 20), n = 20, efficiency is of order 10², not 1–2, and Tables 4 and 6 contradict
each other. We therefore compare *relations and trends* (ordering of mechanisms, direction of change), never
the numbers; ``docs/ALLOCATION_RESULTS.md`` puts these next to our figures and explains each discrepancy.

[decided] Table 4's four columns are read in the order of the paper's mechanisms: no enforcement,
proportional, flat contract, proposed.
"""
from __future__ import annotations

PAPER_REPORTED: dict = {
    "table4": {
        "source": "Cha et al., arXiv 2510.05504 v1, Table 4 (docs/ALLOCATION.md §3)",
        "status": "paper-reported; not reproducible from the stated formulas (Tables 4 and 6 disagree)",
        "mechanisms": ["no_enforcement", "proportional", "flat", "proposed"],
        "efficiency": [1.21, 1.78, 2.02, 2.30],
        "gini": [0.41, 0.35, 0.29, 0.18],
        "relations": [
            "efficiency rises from no enforcement to the proposed mechanism",
            "Gini falls from no enforcement to the proposed mechanism",
        ],
    },
}
