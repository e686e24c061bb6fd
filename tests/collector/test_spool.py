"""The durable spool: atomic entries, a byte bound with eviction, claims, and no exception on a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from collector._spool import Spool
from collector._transport import SendResult

ROOT = Path(__file__).resolve().parents[2]


def test_put_stores_atomically_and_lists_oldest_first(tmp_path: Path) -> None:
    """Entries appear whole under their final name, oldest first, with their item counts; no temp files remain."""
    spool = Spool(tmp_path, 1 << 20)
    for i in range(3):
        assert spool.put("traces", bytes([i]) * 10, i + 1).stored
    entries = spool.entries("traces")
    assert [e.items for e in entries] == [1, 2, 3]
    assert [e.path.read_bytes() for e in entries] == [bytes([i]) * 10 for i in range(3)]
    assert not [p for p in (tmp_path / "traces").iterdir() if p.name.startswith(".tmp")]
    assert spool.pending_items("traces") == 6 and spool.pending_items("logs") == 0


def test_bound_evicts_the_oldest_entries_and_reports_them(tmp_path: Path) -> None:
    """Admitting an entry past the byte bound evicts the oldest ones (any signal) and returns them."""
    spool = Spool(tmp_path, 250)
    spool.put("logs", b"a" * 100, 1)
    spool.put("traces", b"b" * 100, 2)
    result = spool.put("traces", b"c" * 100, 3)
    assert result.stored
    assert [(e.signal, e.items) for e in result.evicted] == [("logs", 1)]
    assert [e.items for e in spool.entries()] == [2, 3]


def test_an_entry_larger_than_the_bound_is_spool_full(tmp_path: Path) -> None:
    """A request bigger than the whole spool is refused as spool_full without touching older entries."""
    spool = Spool(tmp_path, 100)
    spool.put("traces", b"x" * 50, 1)
    result = spool.put("traces", b"y" * 101, 1)
    assert (result.stored, result.reason, result.evicted) == (False, "spool_full", ())
    assert spool.pending_items("traces") == 1


def test_disk_full_is_a_result_not_an_exception(tmp_path: Path) -> None:
    """Under a file-size rlimit (EFBIG, as a full disk) put returns spool_full and the process carries on."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from collector._spool import Spool\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "s = Spool(Path(sys.argv[1]), 1 << 20)\n"
        "small = s.put('traces', b'x' * 500, 1)\n"
        "big = s.put('traces', b'y' * 5000, 7)\n"
        "print(small.stored, big.stored, big.reason, s.pending_items('traces'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
                         check=True)
    assert out.stdout.split() == ["True", "False", "spool_full", "1"]
    assert not [p for p in (tmp_path / "traces").iterdir() if p.name.startswith(".tmp")]


def test_drain_sends_oldest_first_and_stops_at_a_retryable_failure(tmp_path: Path) -> None:
    """Draining deletes what was accepted or rejected, and stops (keeping the rest) when the collector fails."""
    spool = Spool(tmp_path, 1 << 20)
    for payload in (b"1", b"2", b"3", b"4"):
        spool.put("traces", payload, 1)
    answers = {b"1": SendResult(True), b"2": SendResult(False, retryable=False),
               b"3": SendResult(False, retryable=True)}
    sent: list[bytes] = []

    def send(payload: bytes) -> SendResult:
        sent.append(payload)
        return answers.get(payload, SendResult(True))

    counts = spool.drain("traces", send)
    assert sent == [b"1", b"2", b"3"]
    assert (counts.found, counts.exported, counts.rejected, counts.pending) == (3, 1, 1, 1)
    assert [e.path.read_bytes() for e in spool.entries("traces")] == [b"3", b"4"]


def test_claims_of_dead_processes_are_taken_back(tmp_path: Path) -> None:
    """An entry left claimed by a process that died is re-sent by the next drain."""
    spool = Spool(tmp_path, 1 << 20)
    spool.put("logs", b"z", 5)
    [entry] = spool.entries("logs")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    os.rename(entry.path, entry.path.with_name(f"{entry.path.name}.sending-{dead.pid}"))
    assert spool.entries("logs") == []
    counts = spool.drain("logs", lambda p: SendResult(True))
    assert (counts.found, counts.exported) == (5, 5)
    assert not list((tmp_path / "logs").iterdir())


def test_concurrent_drains_send_each_entry_once(tmp_path: Path) -> None:
    """Two drains racing over one spool never send the same entry twice."""
    spool = Spool(tmp_path, 1 << 20)
    for i in range(200):
        spool.put("metrics", str(i).encode(), 1)
    sent: list[bytes] = []
    lock = threading.Lock()

    def send(payload: bytes) -> SendResult:
        with lock:
            sent.append(payload)
        return SendResult(True)

    threads = [threading.Thread(target=Spool(tmp_path, 1 << 20).drain, args=("metrics", send)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sent) == sorted(str(i).encode() for i in range(200))
