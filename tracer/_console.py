"""Guest console capture: WASI stdout/stderr through pipes, assembled into bounded log records.

Why pipes and not ``WasiConfig.stdout_custom``: with custom outputs wasmtime drops the Python callback (through a
ctypes finalizer) on a tokio worker thread; at interpreter exit that thread asks for the GIL during finalization,
CPython ends it with ``pthread_exit``, and the forced unwind through a Rust frame that cannot unwind prints
``thread 'tokio-rt-worker' panicked ... panic in a function that cannot unwind``. A pipe per stream, opened by
wasmtime as ``/proc/self/fd/N``, never calls into Python from wasmtime's threads, streams output as it happens,
and gives back-pressure instead of unbounded buffering.

Cost model: one pump thread per process (restarted after fork) drains every live console's pipes periodically
while guests run (wasmtime releases the GIL during a call). At the end of an invocation the caller unregisters
its pipes and drains the rest inline, so no thread is created, woken or joined per short invocation.

Lines are decoded as UTF-8 with replacement, capped at ``max_line_bytes`` (marked truncated), and kept up to
``max_log_bytes`` per invocation; later lines are counted in ``dropped``. The last 64 KiB of stderr are kept
apart, so a panic printed after a flood is still parsed.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Callable

from tracer._record import LogRecord

_READ = 1 << 16
_TAIL = 1 << 16
_ROUND_READS = 64  # at most 4 MiB per stream per round, so one flood cannot starve the others
_F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 18
PUMP_PERIOD_S = 0.005


class _Stream:
    """One pipe, reused across the invocations of one interceptor (only one runs at a time)."""

    __slots__ = ("name", "read_fd", "write_fd", "partial", "partial_truncated")

    def __init__(self, name: str) -> None:
        self.name = name
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.read_fd, False)
        try:
            fcntl.fcntl(self.write_fd, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # over the per-user pipe budget: the default size only costs more pump rounds
            pass
        self.partial = bytearray()
        self.partial_truncated = False

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class Pipes:
    """The stdout and stderr pipes of one interceptor, reused by each of its invocations.

    Reuse is sound because a guest's ``fd_write`` returns only once the bytes are in the pipe, and wasmtime
    closes its own descriptors with the Store: after ``store.close()`` a non-blocking drain until EAGAIN has
    everything. Creating two pipes per invocation measured ~20 µs.
    """

    def __init__(self) -> None:
        self.streams = (_Stream("stdout"), _Stream("stderr"))
        self.stdout_path = f"/proc/self/fd/{self.streams[0].write_fd}"
        self.stderr_path = f"/proc/self/fd/{self.streams[1].write_fd}"

    def close(self) -> None:
        for s in self.streams:
            s.close()

    def __del__(self) -> None:
        self.close()


class _Pump:
    """Drains registered pipes every ``PUMP_PERIOD_S`` from one daemon thread per process.

    Periodic rather than event-driven: a thread woken by every guest write competes for the GIL and measured
    ~2x the cost of an invocation that prints 10 lines. An invocation shorter than the period is drained only
    by its caller; a flood fills the pipe and the guest waits (back-pressure) until the next round.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._targets: dict[int, tuple[Console, _Stream]] = {}

    def register(self, console: "Console", stream: _Stream) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or after fork): a new thread
                self._pid = os.getpid()
                self._targets = {}
                threading.Thread(target=self._run, args=(self._pid,), name="tracer-console", daemon=True).start()
            self._targets[stream.read_fd] = (console, stream)

    def unregister(self, stream: _Stream) -> None:
        """After this returns the pump will not touch the stream again (it reads only under the lock)."""
        with self._lock:
            self._targets.pop(stream.read_fd, None)

    def _run(self, pid: int) -> None:
        while self._pid == pid:
            time.sleep(PUMP_PERIOD_S)
            if not self._targets:
                continue
            with self._lock:
                for fd, (console, stream) in list(self._targets.items()):
                    for _ in range(_ROUND_READS):
                        try:
                            chunk = os.read(fd, _READ)
                        except BlockingIOError:
                            break
                        if not chunk:  # cannot happen before unregister (we hold a write end)
                            self._targets.pop(fd, None)
                            break
                        console.feed(stream, chunk)


_pump = _Pump()


class Console:
    """Capture of one invocation's output. One per invocation; ``close`` after the Store is closed."""

    def __init__(
        self,
        *,
        max_line_bytes: int,
        max_log_bytes: int,
        pipes: Pipes | None = None,
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
        self._streams = pipes.streams if pipes is not None else ()
        for s in self._streams:
            s.partial.clear()
            s.partial_truncated = False
            _pump.register(self, s)

    def add(self, stream: str, level: str | None, data: bytes) -> None:
        """Record one complete message (the log import): one record per line of it."""
        now = time.time_ns()
        with self._lock:
            for line in data.split(b"\n"):
                self._emit(stream, level, line, False, now)

    def close(self) -> None:
        """Take the pipes back from the pump, drain what is left, flush partial lines. Call after the Store
        is closed (every guest write has then landed in the pipe)."""
        for s in self._streams:
            _pump.unregister(s)
            while True:
                try:
                    chunk = os.read(s.read_fd, _READ)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                self.feed(s, chunk)
        now = time.time_ns()
        with self._lock:
            for s in self._streams:
                if s.partial or s.partial_truncated:
                    self._emit(s.name, None, bytes(s.partial), s.partial_truncated, now)
                    s.partial.clear()
                    s.partial_truncated = False

    def feed(self, s: _Stream, chunk: bytes) -> None:
        now = time.time_ns()
        with self._lock:
            if s.name == "stderr":
                self.stderr_tail += chunk
                if len(self.stderr_tail) > _TAIL:
                    del self.stderr_tail[: len(self.stderr_tail) - _TAIL]
            elif self.capture_stdout:
                room = max(self.max_stdout_bytes - len(self.stdout), 0)
                self.stdout += chunk[:room]
                self.stdout_overflow += max(len(chunk) - room, 0)
                return
            if not s.partial and not s.partial_truncated and len(chunk) <= self.max_line_bytes:
                # Fast path (no pending line, no line can exceed the cap): split once.
                *lines, rest = chunk.split(b"\n")
                for line in lines:
                    self._emit(s.name, None, line, False, now)
                s.partial += rest
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
