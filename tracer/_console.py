"""Guest console capture: WASI stdout/stderr through pipes, assembled into bounded log records.

Why pipes and not ``WasiConfig.stdout_custom``: with custom outputs wasmtime drops the Python callback (through a
ctypes finalizer) on a tokio worker thread; at interpreter exit that thread asks for the GIL during finalization,
CPython ends it with ``pthread_exit``, and the forced unwind through a Rust frame that cannot unwind prints
``thread 'tokio-rt-worker' panicked ... panic in a function that cannot unwind``. A pipe per stream, opened by
wasmtime as ``/proc/self/fd/N``, never calls into Python from wasmtime's threads, streams output as it happens,
and gives back-pressure instead of unbounded buffering.

One reader thread per invocation drains both pipes. Lines are decoded as UTF-8 with replacement, capped at
``max_line_bytes`` (marked truncated), and kept up to ``max_log_bytes`` per invocation; later lines are counted
in ``dropped``. The last 64 KiB of stderr are always kept apart, so a panic after a flood is still parsed.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from typing import Callable

from tracer._record import LogRecord

_READ = 1 << 16
_TAIL = 1 << 16


class _Stream:
    __slots__ = ("name", "fd", "partial", "partial_truncated")

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.partial = bytearray()
        self.partial_truncated = False


class Console:
    """Capture of one invocation's stdout and stderr. Not reusable: one per invocation."""

    def __init__(
        self,
        *,
        max_line_bytes: int,
        max_log_bytes: int,
        capture_stdout: bool = False,
        max_stdout_bytes: int = 0,
        on_log: Callable[[LogRecord], None] | None = None,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_log_bytes = max_log_bytes
        self.capture_stdout = capture_stdout
        self.max_stdout_bytes = max_stdout_bytes
        self.on_log = on_log
        self.records: list[LogRecord] = []
        self.dropped = 0
        self.kept_bytes = 0
        self.stdout = bytearray()
        self.stdout_overflow = 0
        self.stderr_tail = bytearray()
        self._lock = threading.Lock()
        out_r, self._out_w = os.pipe()
        err_r, self._err_w = os.pipe()
        self._streams = [_Stream("stdout", out_r), _Stream("stderr", err_r)]
        self._thread = threading.Thread(target=self._drain, name="tracer-console", daemon=True)
        self._thread.start()

    @property
    def stdout_path(self) -> str:
        return f"/proc/self/fd/{self._out_w}"

    @property
    def stderr_path(self) -> str:
        return f"/proc/self/fd/{self._err_w}"

    def add(self, stream: str, level: str | None, data: bytes) -> None:
        """Record one complete message (the log import): one record per line of it."""
        now = time.time_ns()
        with self._lock:
            for line in data.split(b"\n") if data else [b""]:
                self._emit(stream, level, line, False, now)

    def close(self, timeout: float = 2.0) -> None:
        """Close our write ends (wasmtime has closed its own with the Store), drain, and flush partial lines."""
        for fd in (self._out_w, self._err_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._thread.join(timeout)
        for s in self._streams:
            try:
                os.close(s.fd)
            except OSError:
                pass
        with self._lock:
            now = time.time_ns()
            for s in self._streams:
                if s.partial or s.partial_truncated:
                    self._emit(s.name, None, bytes(s.partial), s.partial_truncated, now)
                    s.partial.clear()
                    s.partial_truncated = False

    def _drain(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self._streams:
            sel.register(s.fd, selectors.EVENT_READ, s)
        open_count = len(self._streams)
        try:
            while open_count:
                for key, _ in sel.select():
                    s: _Stream = key.data
                    try:
                        chunk = os.read(s.fd, _READ)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        sel.unregister(s.fd)
                        open_count -= 1
                        continue
                    with self._lock:
                        self._feed(s, chunk, time.time_ns())
        finally:
            sel.close()

    def _feed(self, s: _Stream, chunk: bytes, now: int) -> None:
        if s.name == "stderr":
            self.stderr_tail += chunk
            if len(self.stderr_tail) > _TAIL:
                del self.stderr_tail[: len(self.stderr_tail) - _TAIL]
        elif self.capture_stdout:
            room = self.max_stdout_bytes - len(self.stdout)
            self.stdout += chunk[: max(room, 0)]
            self.stdout_overflow += max(len(chunk) - max(room, 0), 0)
            return
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            room = self.max_line_bytes - len(s.partial)
            if len(piece) > room:
                s.partial += piece[: max(room, 0)]
                s.partial_truncated = True
            else:
                s.partial += piece
            if nl < 0:
                return
            self._emit(s.name, None, bytes(s.partial), s.partial_truncated, now)
            s.partial.clear()
            s.partial_truncated = False
            start = nl + 1

    def _emit(self, stream: str, level: str | None, line: bytes, truncated: bool, now: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line_bytes:
            line, truncated = line[: self.max_line_bytes], True
        if self.kept_bytes + len(line) > self.max_log_bytes:
            self.dropped += 1
            return
        self.kept_bytes += len(line)
        record = LogRecord(now, stream, level, line.decode("utf-8", "replace"), truncated)
        self.records.append(record)
        if self.on_log is not None:
            try:
                self.on_log(record)
            except Exception:  # a failing sink must not stop the capture
                pass
