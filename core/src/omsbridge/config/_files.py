"""Reading the small files a config names (the config itself, secret files) without hanging.

A FIFO would block ``open`` until a writer comes, ``/dev/zero`` would never end: only regular
files are read, opened non-blocking, and no more than a cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["read_small_file"]


def read_small_file(path: Path, max_bytes: int, what: str = "") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ValueError says what is wrong
    (``cannot read <what> <path>: ...``)."""
    name = f"{what} {path}" if what else str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ValueError(f"cannot read {name}: {kind}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"cannot read {name}: larger than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
