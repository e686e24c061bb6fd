"""``split_module``: the production workflow — a stripped module to ship and a debug twin to keep.

The stripped module keeps every section except the ``.debug_*`` custom sections (the ``name``
section stays, so engines still print function names). Both outputs carry a ``build_id`` custom
section (wasm tool-conventions BuildId.md: one vector of bytes); when the input has none, one is
stamped from the code: the first 16 bytes of SHA-256 over the code section payload. The debug twin
is the whole input (plus that build id), so its code section is byte-identical to the stripped one's
and ``_debugfile.check_twin`` accepts it. Sections are copied byte for byte, never re-encoded.
"""

from __future__ import annotations

from ._errors import InvalidModule
from ._wasm import SEC_CUSTOM, encode_uleb, iter_sections, parse_module, read_uleb, sha256_digest


def build_id_section(build_id: bytes) -> bytes:
    """A complete ``build_id`` custom section holding ``build_id``."""
    name = b"build_id"
    payload = encode_uleb(len(name)) + name + encode_uleb(len(build_id)) + build_id
    return bytes([SEC_CUSTOM]) + encode_uleb(len(payload)) + payload


def split_module(data: bytes) -> tuple[bytes, bytes, str]:
    """Return ``(stripped, debug, build_id_hex)`` for a module (see the module docstring).

    Raises :class:`InvalidModule` for bytes that are not a module.
    """
    module = parse_module(data)
    raw: list[tuple[bool, bytes]] = []  # (is debug section, the section's bytes as in the input)
    pos = 8
    for sec in iter_sections(data):
        start = pos
        _size, body = read_uleb(data, pos + 1, len(data), 32)
        end = sec.offset + sec.size
        is_debug = sec.id == SEC_CUSTOM and sec.name is not None and sec.name.startswith(".debug_")
        raw.append((is_debug, data[start:end]))
        pos = end
        del body
    if pos != len(data):
        raise InvalidModule("trailing bytes after the last section")
    header = data[:8]
    if module.build_id is not None:
        build_id = module.build_id
        extra = b""
    else:
        digest = sha256_digest(module.code_payload())[:16]
        build_id = digest.hex()
        extra = build_id_section(digest)
    stripped = header + b"".join(b for is_debug, b in raw if not is_debug) + extra
    debug = header + b"".join(b for _is_debug, b in raw) + extra
    return stripped, debug, build_id
