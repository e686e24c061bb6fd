"""Separate debug files: find them, read them, and refuse the ones that describe other code.

A production module ships stripped (``tracer split``); its DWARF lives in a *debug twin*: the full
module (same code section, byte for byte) kept aside. The twin is accepted only when its code id (hash
of the code section payload, see ``_wasm.py``) equals the module's, so a twin from another build can
never produce confident wrong answers.

Naming in a symbols directory (``symbols_dir=`` / ``--symbols DIR``), tried in this order::

    <dir>/<code_id>.debug.wasm
    <dir>/<code_id[:2]>/<code_id[2:]>.debug
    <dir>/<build_id>.debug.wasm             (build_id: hex of the module's ``build_id`` section)
    <dir>/<build_id[:2]>/<build_id[2:]>.debug

``tracer split`` writes ``<code_id>.debug.wasm`` names when given a directory.
"""

from __future__ import annotations

import os

from ._errors import DebugFileMismatch, DebugFileNotFound, DebugInfoError, InvalidModule, ModuleNotReadable
from ._wasm import WasmModule, read_module_file


def candidate_names(code_id: str, build_id: str | None) -> list[str]:
    """Relative paths under a symbols directory where the debug file of a module may be."""
    names = [f"{code_id}.debug.wasm", f"{code_id[:2]}/{code_id[2:]}.debug"]
    if build_id and all(c in "0123456789abcdef" for c in build_id):
        names += [f"{build_id}.debug.wasm", f"{build_id[:2]}/{build_id[2:]}.debug"]
    return names


def read_debug_file(path: str | os.PathLike[str], module: WasmModule) -> WasmModule:
    """Read ``path`` as the debug twin of ``module``; refuse it unless its code is identical.

    Raises :class:`DebugFileNotFound` (unreadable), :class:`InvalidModule` (not wasm),
    :class:`DebugFileMismatch` (other code) or :class:`DebugInfoError` (no DWARF in it).
    """
    try:
        debug = read_module_file(path)
    except ModuleNotReadable as exc:
        cause = getattr(exc.__cause__, "strerror", None) or exc
        raise DebugFileNotFound(f"cannot read debug file {path}: {cause}") from exc
    except InvalidModule as exc:
        raise InvalidModule(f"debug file {path}: {exc}") from exc
    check_twin(module, debug, str(path))
    if not debug.has_dwarf:
        raise DebugInfoError(f"debug file {path} has no DWARF (.debug_info) section")
    return debug


def check_twin(module: WasmModule, debug: WasmModule, what: str = "debug file") -> None:
    """Raise :class:`DebugFileMismatch` unless ``debug`` has exactly ``module``'s code section."""
    if debug.code_id != module.code_id:
        raise DebugFileMismatch(
            f"{what} does not match the module: its code id is {debug.code_id}, the module's is "
            f"{module.code_id} (built from different code)"
        )


def find_debug_file(symbols_dir: str | os.PathLike[str], module: WasmModule) -> WasmModule | None:
    """Search ``symbols_dir`` by code id then build id; the first matching twin with DWARF wins.

    Files found under the build id whose code differs are skipped (a reused build id is not trusted).
    """
    for rel in candidate_names(module.code_id, module.build_id):
        path = os.path.join(symbols_dir, rel)
        if not os.path.isfile(path):
            continue
        try:
            return read_debug_file(path, module)
        except (DebugFileMismatch, InvalidModule, DebugInfoError, DebugFileNotFound):
            continue
    return None
