"""Readable names from mangled ones: Rust legacy (``_ZN…17h<hash>E``), Rust v0 (``_R…``) and Itanium C++.

Rust goes through ``pyderust``, bindings of the ``rustc-demangle`` crate: the implementation rustc's own tools
and wasmtime use, so our names are the ones wasmtime prints (measured on every symbol of every fixture, see
``tests/symbolizer/test_demangle.py``). We print its "alternate" form: no legacy ``::h<hash>`` suffix, no v0
crate disambiguators, no ``.llvm.<n>`` suffix. Names that are not Rust but look like Itanium C++ (``_Z…``) go
through ``pycxxfilt`` (LLVM's demangler, the one behind ``llvm-cxxfilt``). Anything else is returned as given.

Both are compiled extensions. If ``pyderust`` cannot be imported (a platform without a wheel), pure-Python
demanglers take over: legacy names here (a plain Itanium nested name plus ``$…$`` escapes), v0 names in
``_demangle_v0.py`` (a port of rustc-demangle's printer that gives up, rather than guesses, on what it does not
cover). Without ``pycxxfilt``, C++ names are returned mangled.

Cost: about 2 µs a name with ``pyderust``; results are memoized because a trace repeats names.
"""

from __future__ import annotations

import functools

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    import re
    from collections.abc import Callable

__all__ = ["demangle"]

# Legacy Rust symbols escape characters an Itanium identifier cannot hold (rustc's legacy mangling,
# compiler/rustc_symbol_mangling/src/legacy.rs).
_LEGACY_ESCAPES = {
    "SP": "@",
    "BP": "*",
    "RF": "&",
    "LT": "<",
    "GT": ">",
    "LP": "(",
    "RP": ")",
    "C": ",",
}
# The legacy hash segment ``h<16 hex digits>``, and LLVM's uniquing suffix ``.llvm.<digits, A-F or @>`` (which
# rustc-demangle drops, and nothing else). Compiled on first use: only the pure-Python fallback needs them.
_legacy_patterns: tuple[re.Pattern[str], re.Pattern[str]] | None = None


def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    global _legacy_patterns
    if _legacy_patterns is None:
        import re

        _legacy_patterns = (re.compile(r"h[0-9a-f]{16}"), re.compile(r"\.llvm\.[0-9A-F@]*$"))
    return _legacy_patterns
_MAX_NAME = 64 * 1024  # longer inputs are not symbols we can trust; returned as given


def _legacy_segment(seg: str) -> str | None:
    """Decode one path segment of a legacy symbol, or None when it is not valid legacy mangling."""
    if seg.startswith("_$"):
        seg = seg[1:]
    out: list[str] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "$":
            end = seg.find("$", i + 1)
            if end < 0:
                return None
            code = seg[i + 1 : end]
            if code in _LEGACY_ESCAPES:
                out.append(_LEGACY_ESCAPES[code])
            elif code.startswith("u") and 1 < len(code) <= 7 and all(ch in "0123456789abcdef" for ch in code[1:]):
                try:
                    out.append(chr(int(code[1:], 16)))
                except ValueError:  # beyond U+10FFFF
                    return None
            else:
                return None
            i = end + 1
        elif seg.startswith("..", i):
            out.append("::")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _demangle_legacy(name: str) -> str | None:
    """Pure-Python Rust legacy demangling (alternate form, without the hash); None when ``name`` is not one."""
    legacy_hash, llvm_suffix = _patterns()
    s = llvm_suffix.sub("", name)
    if s.startswith("__ZN"):  # macOS adds an underscore
        s = s[1:]
    if s.startswith("ZN"):
        s = "_" + s
    if not s.startswith("_ZN"):
        return None
    i = 3
    segments: list[str] = []
    while i < len(s) and s[i] != "E":
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        if j == i or j - i > 6:
            return None
        length = int(s[i:j])
        seg = s[j : j + length]
        if len(seg) != length or not seg.isascii():
            return None
        segments.append(seg)
        i = j + length
    if i >= len(s) or not segments:
        return None
    if i + 1 != len(s) and not s[i + 1] == ".":  # rustc-demangle keeps a trailing ".suffix"; we drop it
        return None
    if len(segments) > 1 and legacy_hash.fullmatch(segments[-1]):
        segments.pop()
    decoded = [_legacy_segment(seg) for seg in segments]
    if any(d is None for d in decoded):
        return None
    return "::".join(d for d in decoded if d is not None)


def _load_rust() -> Callable[[str], str | None]:
    try:
        import pyderust
    except ImportError:  # no wheel for this platform: the pure-Python demanglers
        from ._demangle_v0 import demangle_v0

        def fallback(name: str) -> str | None:
            return _demangle_legacy(name) if "ZN" in name[:4] else demangle_v0(name)

        return fallback

    def rust(name: str) -> str | None:
        try:
            return pyderust.demangle(name)
        except (pyderust.DemangleError, ValueError):
            return None

    return rust


def _load_itanium() -> Callable[[str], str | None]:
    try:
        import pycxxfilt
    except ImportError:

        def none(name: str) -> str | None:
            return None

        return none

    def itanium(name: str) -> str | None:
        try:
            result: str | None = pycxxfilt.itanium_demangle(name)
        except ValueError:
            return None
        return result

    return itanium


_rust: Callable[[str], str | None] | None = None
_itanium: Callable[[str], str | None] | None = None


def demangle(name: str) -> str:
    """Return the readable form of ``name`` (Rust without the legacy hash, or C++), or ``name`` itself.

    Never raises: a name that is not mangled, or mangled wrongly, comes back unchanged.
    """
    return _demangle_cached(name)


@functools.lru_cache(maxsize=8192)
def _demangle_cached(name: str) -> str:
    global _rust, _itanium
    if len(name) > _MAX_NAME or not name.isascii():
        return name
    if name.startswith(("_R", "_ZN", "__ZN", "ZN", "__R", "R")):
        if _rust is None:
            _rust = _load_rust()
        result = _rust(name)
        if result is not None:
            return result
    if name.startswith(("_Z", "__Z")):
        if _itanium is None:
            _itanium = _load_itanium()
        result = _itanium(name.removeprefix("_") if name.startswith("__Z") else name)
        if result is not None:
            return result
    return name
