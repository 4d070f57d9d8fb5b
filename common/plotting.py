"""matplotlib for figures written to files: the Agg backend (no display), imported on first use -- it takes a
noticeable part of a second, which commands that draw nothing should not pay."""
from __future__ import annotations

import io
from pathlib import Path

from common.files import write_file_atomic

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path | str, *, dpi: int, tight: bool = False) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix; a reader sees the whole file or none) and close it
    (pyplot keeps every open figure)."""
    path = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi,
                    bbox_inches="tight" if tight else None)
    finally:
        pyplot().close(fig)
    write_file_atomic(path, buffer.getvalue(), overwrite=True)
    return path
