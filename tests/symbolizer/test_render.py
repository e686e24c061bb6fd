"""Renderers: JSON shape, the human backtrace, OTel's stacktrace text, and terminal sanitizing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symbolizer._model import SourceLocation, Symbol, SymbolizedFrame
from symbolizer._render import (
    format_frames,
    format_location,
    format_stacktrace,
    frame_to_json,
    sanitize_terminal,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

UNWRAP = Symbol(
    "core::option::Option<T>::unwrap",
    "_ZN4core6option15Option$LT$T$GT$6unwrap17h7fd1aa1b833c0c4bE",
    SourceLocation("/usr/src/rustc-1.63.0/library/core/src/option.rs", 775, 21),
    True,
)
HANDLE = Symbol(
    "panics::worker::handle",
    "_ZN6panics6worker6handle17h4f85183a7c65d26fE",
    SourceLocation("/work/main/tests/fixtures/panics.rs", 30, 17),
    False,
)
MAIN = Symbol("main", None, SourceLocation("trap.c", 12, None), False)
NOWHERE = Symbol("__original_main", None, None, False)

FRAMES = (
    SymbolizedFrame(0x29A5, 45, (UNWRAP, HANDLE)),
    SymbolizedFrame(0x2BE, 8, (MAIN,)),
    SymbolizedFrame(0x199F, 26, (NOWHERE,)),
    SymbolizedFrame(0x10, None, ()),
)


def test_frame_to_json_has_the_documented_shape() -> None:
    """A frame becomes {address, func_index, symbols: [{function, mangled, file, line, column, inlined}]}."""
    doc = frame_to_json(FRAMES[0])
    assert doc == {
        "address": 0x29A5,
        "func_index": 45,
        "symbols": [
            {
                "function": "core::option::Option<T>::unwrap",
                "mangled": "_ZN4core6option15Option$LT$T$GT$6unwrap17h7fd1aa1b833c0c4bE",
                "file": "/usr/src/rustc-1.63.0/library/core/src/option.rs",
                "line": 775,
                "column": 21,
                "inlined": True,
            },
            {
                "function": "panics::worker::handle",
                "mangled": "_ZN6panics6worker6handle17h4f85183a7c65d26fE",
                "file": "/work/main/tests/fixtures/panics.rs",
                "line": 30,
                "column": 17,
                "inlined": False,
            },
        ],
    }
    assert json.loads(json.dumps(doc)) == doc


def test_frame_to_json_unknown_parts_are_null() -> None:
    """Missing location and index come out as JSON null, an empty chain as an empty list."""
    assert frame_to_json(FRAMES[2])["symbols"][0] == {
        "function": "__original_main", "mangled": None, "file": None, "line": None, "column": None,
        "inlined": False,
    }
    assert frame_to_json(FRAMES[3]) == {"address": 16, "func_index": None, "symbols": []}


def test_format_location_shows_only_known_parts() -> None:
    """file:line:column, dropping unknown trailing parts, and None without a file."""
    assert format_location(SourceLocation("a.rs", 3, 9)) == "a.rs:3:9"
    assert format_location(SourceLocation("a.rs", 3, None)) == "a.rs:3"
    assert format_location(SourceLocation("a.rs", None, None)) == "a.rs"
    assert format_location(SourceLocation(None, 3, 9)) is None
    assert format_location(None) is None


def test_format_frames_numbers_frames_and_tags_inlines() -> None:
    """The human backtrace numbers each wasm frame once, puts each location under its symbol, tags inlines."""
    assert format_frames(FRAMES) == (
        "  0: 0x29a5 - core::option::Option<T>::unwrap [inlined]\n"
        "                at /usr/src/rustc-1.63.0/library/core/src/option.rs:775:21\n"
        "              panics::worker::handle\n"
        "                at /work/main/tests/fixtures/panics.rs:30:17\n"
        "  1: 0x2be - main\n"
        "               at trap.c:12\n"
        "  2: 0x199f - __original_main\n"
        "  3: 0x10 - <unknown>\n"
    )
    assert format_frames(()) == ""


def test_format_stacktrace_is_one_at_line_per_symbol() -> None:
    """OTel's stacktrace text: `    at function (file:line:col)`, inlines tagged, wasm position when no file."""
    assert format_stacktrace(FRAMES) == (
        "    at core::option::Option<T>::unwrap (/usr/src/rustc-1.63.0/library/core/src/option.rs:775:21) [inlined]\n"
        "    at panics::worker::handle (/work/main/tests/fixtures/panics.rs:30:17)\n"
        "    at main (trap.c:12)\n"
        "    at __original_main (wasm-function[26]:0x199f)\n"
        "    at <unknown> (0x10)"
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m and \x1b]0;title\x07 bell\n", "red and  bell\n"),  # SGR + OSC title (panics.rs badbytes)
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST-terminated
        ("a\rb", "a\ufffdb"),  # carriage return could overwrite the line
        ("x\x1b[2J\x1b[Hy", "xy"),  # clear screen, cursor home
        ("no\x07bell\x08back", "no\ufffdbell\ufffdback"),
        ("\u202eevil\u202c", "\ufffdevil\ufffd"),  # bidi override (Trojan Source)
        ("\x9b31mC1 CSI", "C1 CSI"),
        ("unterminated \x1b]0;title\nnext", "unterminated \nnext"),  # an open OSC ends at its line
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("plain ünïcode → ok", "plain ünïcode → ok"),
    ],
)
def test_sanitize_terminal(raw: str, clean: str) -> None:
    """Escape sequences disappear; other control characters become U+FFFD; tabs, newlines, text stay."""
    assert sanitize_terminal(raw) == clean


def test_format_frames_sanitizes_hostile_names() -> None:
    """A function name or path carrying escape sequences cannot reach the terminal through format_frames."""
    evil = Symbol("f\x1b]0;pwned\x07\x1b[2J", None, SourceLocation("a\x1b[31m.rs", 1, 1), False)
    text = format_frames([SymbolizedFrame(1, 0, (evil,))])
    assert "\x1b" not in text and "\x07" not in text
    assert "f" in text and "a.rs:1:1" in text
