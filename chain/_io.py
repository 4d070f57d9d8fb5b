"""The chain package's crash-safe writes: :func:`common.files.write_file_atomic`, overwriting, folders made,
with mode 0600 -- the mode chain's files (snapshots, event index, artifact cache) have always had."""
from __future__ import annotations

from functools import partial

from common.files import write_file_atomic

write_atomic = partial(write_file_atomic, mode=0o600, overwrite=True, parents=True)
