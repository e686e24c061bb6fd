"""The compiled-module cache under ``$TRACER_CACHE_DIR/modules``.

``Module.deserialize`` runs native code, so an entry is used only after its integrity checks out: each entry is
``<key>.cwasm`` plus ``<key>.json`` recording the SHA-256 and size of the compiled bytes when they were written.
The key is a hash of the module's SHA-256, the wasmtime version and the engine settings, so a different engine
never loads another's code. The cache directory must belong to us and not be writable by group or others; else
it is not used (a warning, then compile as if cold). Entries are written atomically (temporary file + rename).
A corrupt or mismatched entry is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import structlog

from symbolizer._atomic import write_atomic

log = structlog.get_logger("tracer.cache")

_FORMAT = 1


def cache_key(module_sha256: str, wasmtime_version: str, settings: str) -> str:
    text = f"v{_FORMAT}\0{module_sha256}\0{wasmtime_version}\0{settings}"
    return hashlib.sha256(text.encode()).hexdigest()


def _safe_dir(path: Path) -> bool:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        log.warning("cache directory unusable", path=str(path), error=str(exc))
        return False
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning("cache directory not private, not used", path=str(path))
        return False
    return True


class ModuleCache:
    """Verified storage of compiled modules. Cheap to build; each call touches two small files."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "modules"
        self.usable = _safe_dir(self.dir)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.cwasm"

    def load(self, key: str) -> bytes | None:
        """The compiled bytes for ``key`` if present and intact, else None. The caller may hand wasmtime the
        file (``path(key)``) rather than these bytes: the directory is private (ours, 0700), so whoever could
        swap the file between this check and that load could as well rewrite the recorded hash."""
        if not self.usable:
            return None
        try:
            meta = json.loads((self.dir / f"{key}.json").read_text())
            data = (self.dir / f"{key}.cwasm").read_bytes()
        except (OSError, ValueError):
            return None
        if (
            not isinstance(meta, dict)
            or meta.get("format") != _FORMAT
            or meta.get("size") != len(data)
            or meta.get("sha256") != hashlib.sha256(data).hexdigest()
        ):
            log.warning("compiled-module cache entry failed verification, recompiling", key=key)
            return None
        return data

    def store(self, key: str, data: bytes | bytearray) -> None:
        if not self.usable:
            return
        meta = {"format": _FORMAT, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        try:
            write_atomic(self.dir / f"{key}.cwasm", data)
            write_atomic(self.dir / f"{key}.json", json.dumps(meta).encode())
        except OSError as exc:
            log.warning("could not write compiled-module cache", key=key, error=str(exc))
