"""The durable spool: export requests that could not be delivered wait here, as serialized OTLP protobuf, until
the next ``Pipeline.start`` or ``tracer flush`` re-sends them (at least once).

Layout: ``<spool>/<signal>/<time_ns>-<pid>-<seq>-n<items>.otlp``; the item count in the name lets a report count
without parsing. A file is written under a temporary name, fsynced and renamed into place, so a crash leaves
either the whole request or nothing. A sender claims a file by renaming it to ``….sending-<pid>`` (atomic: two
flushing processes never send the same file twice at once); a claim whose process is gone is taken back.

The spool is bounded by bytes: to admit a request, the oldest files (any signal) are evicted and counted as
dropped ``spool_evicted``; a request larger than the bound, or a disk that is full (ENOSPC, EFBIG from a file-size
limit, EDQUOT), is counted as dropped ``spool_full``. Nothing here raises.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from collector._config import SIGNALS, Signal
from collector._transport import SendResult

_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)-n(\d+)\.otlp$")
_CLAIM = re.compile(r"^(?P<name>.+\.otlp)\.sending-(?P<pid>\d+)$")
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    signal: Signal
    path: Path
    items: int
    size: int
    pid: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """``stored`` or the drop reason; ``evicted``: older entries removed to make room."""

    stored: bool
    reason: str | None
    path: Path | None
    evicted: tuple[SpoolEntry, ...] = ()


@dataclass(slots=True)
class DrainCounts:
    """Of the items found in the spool: sent, rejected by the collector, still there."""

    found: int = 0
    exported: int = 0
    rejected: int = 0
    pending: int = 0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """A bounded directory of pending requests. Thread-safe within a process; safe across processes."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq = itertools.count()

    def _dir(self, signal: Signal) -> Path:
        return self.root / signal

    def entries(self, signal: Signal | None = None) -> list[SpoolEntry]:
        """Pending (unclaimed) entries, oldest first."""
        out: list[SpoolEntry] = []
        for sig in (signal,) if signal else SIGNALS:
            try:
                names = os.listdir(self._dir(sig))
            except OSError:
                continue
            for name in names:
                m = _NAME.match(name)
                if not m:
                    continue
                path = self._dir(sig) / name
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                out.append(SpoolEntry(sig, path, int(m.group(4)), size, int(m.group(2))))
        out.sort(key=lambda e: e.path.name)
        return out

    def pending_items(self, signal: Signal) -> int:
        return sum(e.items for e in self.entries(signal))

    def _used_bytes(self) -> int:
        total = 0
        for sig in SIGNALS:
            try:
                with os.scandir(self._dir(sig)) as it:
                    for entry in it:
                        try:
                            total += entry.stat().st_size
                        except OSError:
                            pass
            except OSError:
                continue
        return total

    def put(self, signal: Signal, payload: bytes, items: int) -> PutResult:
        """Store one serialized request atomically; never raises."""
        if len(payload) > self.max_bytes:
            return PutResult(False, "spool_full", None)
        with self._lock:
            evicted: list[SpoolEntry] = []
            try:
                used = self._used_bytes()
                if used + len(payload) > self.max_bytes:
                    for old in self.entries():
                        if used + len(payload) <= self.max_bytes:
                            break
                        try:
                            os.unlink(old.path)
                        except OSError:
                            continue
                        used -= old.size
                        evicted.append(old)
                directory = self._dir(signal)
                directory.mkdir(parents=True, exist_ok=True)
                name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}-n{items}.otlp"
                final = directory / name
                tmp = directory / f".tmp-{name}"
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    try:
                        view = memoryview(payload)
                        while view:
                            view = view[os.write(fd, view):]
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.replace(tmp, final)
                except BaseException:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                    raise
                return PutResult(True, None, final, tuple(evicted))
            except OSError as exc:
                reason = "spool_full" if exc.errno in _FULL_ERRNOS else "spool_error"
                return PutResult(False, reason, None, tuple(evicted))

    def _reclaim_stale(self, signal: Signal) -> None:
        try:
            names = os.listdir(self._dir(signal))
        except OSError:
            return
        for name in names:
            m = _CLAIM.match(name)
            if m and not _pid_alive(int(m.group("pid"))):
                try:
                    os.rename(self._dir(signal) / name, self._dir(signal) / m.group("name"))
                except OSError:
                    pass

    def drain(
        self,
        signal: Signal,
        send: Callable[[bytes], SendResult],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_claim: Callable[[SpoolEntry], None] | None = None,
        on_result: Callable[[SpoolEntry, SendResult], None] | None = None,
    ) -> DrainCounts:
        """Re-send this signal's entries oldest first; stop at the first retryable failure (the collector is
        still away). An entry is deleted only after the collector answered (at-least-once: a crash in between
        re-sends it). ``found``/``pending`` count what this call claimed and what it put back."""
        self._reclaim_stale(signal)
        counts = DrainCounts()
        for entry in self.entries(signal):
            if should_stop():
                break
            claimed = entry.path.with_name(f"{entry.path.name}.sending-{os.getpid()}")
            try:
                os.rename(entry.path, claimed)
            except OSError:
                continue  # another process took it, or it was evicted
            counts.found += entry.items
            if on_claim:
                on_claim(entry)
            try:
                payload = claimed.read_bytes()
            except OSError:
                payload = b""
            result = send(payload)
            if result.ok or not result.retryable:
                try:
                    os.unlink(claimed)
                except OSError:
                    pass
                if result.ok:
                    counts.exported += entry.items - result.rejected
                    counts.rejected += result.rejected
                else:
                    counts.rejected += entry.items
                if on_result:
                    on_result(entry, result)
                continue
            try:
                os.rename(claimed, entry.path)
            except OSError:
                pass
            counts.pending += entry.items
            if on_result:
                on_result(entry, result)
            break
        return counts
