"""`tracer symbolize`'s start-up shortcuts agree with what they stand in for: argparse, and the cache rule."""

from __future__ import annotations

import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from tracer import _cli
from tracer._cmd_symbolize import parse_simple

# Words that exercise every branch: positionals, each flag, values, and what must go to argparse instead
# (help, abbreviations, "--opt=value", a lone dash, negative numbers, words with spaces).
WORDS = [
    "m.wasm", "0x29a5", "3390", "", "a b", "--json", "--index", "--code-offsets", "--debug-file", "--symbols",
    "dbg", "-h", "--help", "--jso", "--debug-file=x", "-", "-5", "--nope",
]


def _argparse(argv: list[str]) -> dict[str, object] | None:
    """argparse's values for `tracer symbolize ARGV`, or None when it refuses them."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            ns = _cli.build_parser(["symbolize", *argv]).parse_args(["symbolize", *argv])
    except SystemExit:
        return None
    return {k: v for k, v in vars(ns).items() if k not in ("command", "_run")}


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=7))
def test_parse_simple_gives_argparses_values_or_declines(argv: list[str]) -> None:
    """Whenever parse_simple accepts a command line, argparse accepts it too with the very same values."""
    fast = parse_simple(argv)
    if fast is not None:
        assert fast == _argparse(argv)


def test_parse_simple_takes_the_plain_command_lines() -> None:
    """The usual command lines (addresses, a trace on stdin, --json, a debug file, --index) skip argparse."""
    for argv in (
        ["m.wasm", "0x29a5", "3390"],
        ["m.wasm"],
        ["m.wasm", "0x1", "--json"],
        ["--debug-file", "d.wasm", "m.wasm", "0x1"],
        ["--index", "m.wasm"],
        ["m.wasm", "--symbols", "dir", "--code-offsets"],
    ):
        assert parse_simple(argv) == _argparse(argv), argv


def test_parse_simple_leaves_help_and_mistakes_to_argparse() -> None:
    """Help, abbreviations, both debug sources and interleaved addresses go through argparse's messages."""
    for argv in (
        ["-h"],
        ["m.wasm", "--help"],
        ["m.wasm", "--jso"],
        ["m.wasm", "--debug-file", "d", "--symbols", "s"],
        ["m.wasm", "0x1", "--json", "0x2"],
        [],
    ):
        assert parse_simple(argv) is None, argv


def test_symbolize_cache_dir_follows_the_configuration_rule(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`tracer symbolize` finds the cache where tracer._config says it is, for each way of setting it."""
    from tracer._cmd_symbolize import _cache_dir
    from tracer._config import default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for tracer_cache, xdg in ((None, None), (None, str(tmp_path / "xdg")), (str(tmp_path / "c"), str(tmp_path / "x"))):
        for name, value in (("TRACER_CACHE_DIR", tracer_cache), ("XDG_CACHE_HOME", xdg)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        assert _cache_dir() == str(default_cache_dir())
