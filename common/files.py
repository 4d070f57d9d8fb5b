"""Crash-safe file writes: a reader sees the old file or the whole new one, never a part."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_file_atomic"]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = False,
                      parents: bool = False) -> None:
    """Write ``data`` so a crash leaves the old file or the whole new one: temp file in the same directory
    with the exact ``mode``, fsync, rename, fsync of the directory. ``parents`` creates missing folders;
    without ``overwrite`` an existing file is refused."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: exists; refusing to overwrite (pass overwrite=True)")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        os.fchmod(fd, mode)  # the process umask may have narrowed or the mode must be exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk (ENOSPC, EFBIG) names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    os.close(fd)
    os.replace(temporary, path)
    _fsync_directory(path.parent)
