"""The ``"machine"`` record every benchmark JSON carries: where its figures were measured.

Imported by the benchmark scripts as a sibling module (a script's own folder is first on ``sys.path``)."""
from __future__ import annotations

import os
import platform


def machine(**extra) -> dict:
    """Cores, platform and Python of this machine, plus the script's own fields (load averages, numpy, ...)."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), **extra}
