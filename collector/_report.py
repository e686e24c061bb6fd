"""Delivery accounting: per signal, every item handed to the pipeline is exported, dropped for a named reason,
or pending in the spool — ``emitted == exported + sum(dropped.values()) + pending`` at every snapshot.

Items are spans, log records and metric data points. ``DeliveryReport.signals`` counts this process's own
telemetry; ``DeliveryReport.resent`` counts spool entries left by earlier processes and re-sent by this one
(``emitted`` there is what was found in the spool).

Drop reasons: ``queue_full`` (a batch queue at its bound), ``rejected`` (the collector refused: a non-retryable
status or an OTLP partial success), ``too_large`` (one item bigger than a request may be), ``spool_full`` (spool
bound or disk full), ``spool_error`` (another spool I/O error), ``spool_evicted`` (made room for newer entries),
``export_failed`` (a file/console write failed, or a failure with no spool), ``encode_error`` (an item the OTLP
encoder refused).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping

from collector._config import SIGNALS


@dataclass(frozen=True, slots=True)
class SignalCounts:
    emitted: int = 0
    exported: int = 0
    dropped: Mapping[str, int] = field(default_factory=dict)
    pending: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def balanced(self) -> bool:
        return self.emitted == self.exported + self.dropped_total + self.pending

    def format(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()) if v)
        dropped = f"{self.dropped_total}" + (f" ({drops})" if drops else "")
        return f"emitted {self.emitted}, exported {self.exported}, dropped {dropped}, pending {self.pending}"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What became of the telemetry; returned by ``Pipeline.shutdown`` and printed by ``tracer flush``."""

    signals: Mapping[str, SignalCounts] = field(default_factory=dict)
    resent: Mapping[str, SignalCounts] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.signals.values()) + sum(c.pending for c in self.resent.values())

    @property
    def balanced(self) -> bool:
        return all(c.balanced for c in self.signals.values()) and all(c.balanced for c in self.resent.values())

    def lines(self) -> list[str]:
        out = [f"{s}: {self.signals[s].format()}" for s in SIGNALS if s in self.signals]
        out += [f"{s} (spooled earlier): {self.resent[s].format()}" for s in SIGNALS
                if s in self.resent and self.resent[s].emitted]
        return out


class Counts:
    """Mutable, thread-safe counters for one signal; ``snapshot`` gives a consistent ``SignalCounts``. Counters
    that move items between each other (pending → exported) share one lock, so no snapshot sees half a move."""

    def __init__(self, lock: "threading.RLock | None" = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self.emitted = 0
        self.exported = 0
        self.dropped: Counter[str] = Counter()
        self.pending = 0

    def add_emitted(self, n: int) -> None:
        with self.lock:
            self.emitted += n

    def drop(self, reason: str, n: int) -> None:
        if n:
            with self.lock:
                self.dropped[reason] += n

    def snapshot(self) -> SignalCounts:
        with self.lock:
            return SignalCounts(self.emitted, self.exported, dict(+self.dropped), self.pending)
