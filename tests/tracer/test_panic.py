"""Parsing Rust panics from stderr, in both the ≤1.72 and ≥1.73 formats."""

from __future__ import annotations

from tracer._panic import allocation_failure, parse_panic
from tracer._record import Panic

NOTE = "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"


def test_old_format() -> None:
    """Rust ≤ 1.72: message quoted before the location."""
    text = "thread 'main' panicked at 'called `Option::unwrap()` on a `None` value', src/lib.rs:12:5\n" + NOTE
    assert parse_panic(text) == Panic("main", "called `Option::unwrap()` on a `None` value", "src/lib.rs", 12, 5)


def test_new_format_multiline() -> None:
    """Rust ≥ 1.73: location line ending in a colon, message on the following lines up to the note."""
    text = "thread 'main' panicked at src/x.rs:6:5:\nfirst\nsecond: 'quoted'\n" + NOTE
    assert parse_panic(text) == Panic("main", "first\nsecond: 'quoted'", "src/x.rs", 6, 5)


def test_new_format_with_thread_id_and_no_note() -> None:
    """Newer Rust adds a thread id in parentheses; a message at the end of the text is taken to the end."""
    text = "thread 'worker' (7) panicked at src/x.rs:1:2:\nboom\n"
    assert parse_panic(text) == Panic("worker", "boom", "src/x.rs", 1, 2)


def test_the_last_panic_wins() -> None:
    """A panic while panicking prints two reports; the last one is the one that aborted."""
    text = "thread 'main' panicked at 'first', a.rs:1:1\nthread 'main' panicked at 'second', b.rs:2:2\n"
    panic = parse_panic(text)
    assert panic is not None and (panic.message, panic.file) == ("second", "b.rs")


def test_no_panic() -> None:
    """Ordinary stderr has no panic."""
    assert parse_panic("warning: something\nthread is fine\n") is None


def test_message_with_quote_and_comma_in_old_format() -> None:
    """A message containing `', ` is still split at the final location."""
    text = "thread 'main' panicked at 'a', b', src/m.rs:3:4\n"
    assert parse_panic(text) == Panic("main", "a', b", "src/m.rs", 3, 4)


def test_allocation_failure_size() -> None:
    """Rust's alloc-error hook line gives the size that failed."""
    assert allocation_failure("memory allocation of 1048576 bytes failed\n") == 1048576
    assert allocation_failure("all good") is None
