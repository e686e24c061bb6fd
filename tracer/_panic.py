"""Parse a Rust panic out of the guest's stderr.

Rust ≤ 1.72 prints ``thread 'main' panicked at 'msg', src/x.rs:6:5`` (the message may span lines);
Rust ≥ 1.73 prints ``thread 'main' panicked at src/x.rs:6:5:`` and the message on the following lines, up to
the ``note: run with `RUST_BACKTRACE=1` ...`` line or the end. The last panic in the text wins (a panic while
panicking prints two).
"""

from __future__ import annotations

import re

from tracer._record import Panic

_OLD = re.compile(
    r"thread '(?P<thread>[^']*)' panicked at '(?P<msg>.*?)', (?P<file>(?:(?!', )[^\n])*?):(?P<line>\d+):(?P<col>\d+)\s*$",
    re.DOTALL | re.MULTILINE,
)
_NEW = re.compile(
    r"thread '(?P<thread>[^']*)'(?: \(\d+\))? panicked at (?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+):\n"
    r"(?P<msg>.*?)(?=\nnote: |\nthread '|\n?\Z)",
    re.DOTALL,
)
_ALLOC = re.compile(r"memory allocation of (\d+) bytes failed")


def parse_panic(stderr: str) -> Panic | None:
    """Return the last Rust panic reported in ``stderr``, or None."""
    best: tuple[int, Panic] | None = None
    for pattern in (_OLD, _NEW):
        for m in pattern.finditer(stderr):
            panic = Panic(
                thread=m.group("thread") or None,
                message=m.group("msg").rstrip("\n"),
                file=m.group("file"),
                line=int(m.group("line")),
                column=int(m.group("col")),
            )
            if best is None or m.start() >= best[0]:
                best = (m.start(), panic)
    return best[1] if best else None


def allocation_failure(stderr: str) -> int | None:
    """The size Rust's default alloc-error hook reports (``memory allocation of N bytes failed``), or None."""
    found = _ALLOC.findall(stderr)
    return int(found[-1]) if found else None
