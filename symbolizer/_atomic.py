"""Atomic file writes, shared by every package that persists files (symbol index, compiled-module cache,
``tracer split``, the telemetry spool): a temporary file in the target's directory, then ``os.replace``, so a
reader sees the old file or the whole new one, never half. Lives in the lowest package of the stack so that
the tracer and the collector can use it without the symbolizer depending on them.
"""

from __future__ import annotations

import os


def write_atomic(path: str | os.PathLike[str], data: bytes | bytearray | memoryview, *,
                 mode: int | None = None, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically. ``mode`` sets the permissions (default: mkstemp's 0600);
    ``fsync`` makes the bytes durable before the rename (the spool's at-least-once promise needs it)."""
    import tempfile  # only writers pay for it: the warm symbolize path never writes

    directory, name = os.path.split(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
