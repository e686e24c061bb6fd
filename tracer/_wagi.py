"""WAGI, the Common Gateway Interface for WASI guests: the request as environment and argv, the response parsed.

Pure functions, no wasmtime and no server here, so the ABI is tested on its own.

Request (deislabs/wagi ``docs/environment_variables.md`` and ``src/http_util.rs::build_headers``, which follow
RFC 3875 §4.1): the guest gets CGI meta-variables as its environment, the body on stdin and, as WAGI does,
the query items as arguments. One module serves every path, so the matched route is ``/...``,
``SCRIPT_NAME`` is empty (RFC 3875 §4.1.13: the script is mounted at the root) and ``PATH_INFO`` is the whole
URL path, percent-decoded (``X_RAW_PATH_INFO`` keeps it encoded). ``argv[0]`` is the module name (the tracer
sets it as a command line would) rather than WAGI's path; ``argv[1:]`` are the query items as in WAGI.
Request headers become ``HTTP_*`` (upper case, ``-`` → ``_``, §4.1.18) except ``Authorization`` and ``Connection``, which §4.1.18 says the
server should not pass on; ``Content-Type`` and ``Content-Length`` are only ``CONTENT_TYPE`` and
``CONTENT_LENGTH``.

Response (RFC 3875 §6): header lines ending in ``\\n`` or ``\\r\\n``, a blank line, the body. ``status:``
gives the code (``status: 404 Not Found``), ``location:`` without a status means 302, and at least one of
``content-type``, ``status`` or ``location`` must be present (WAGI's rule, laxer than §6.2). Anything else —
no blank line, a header line without a colon, a bad name or value, a bad status — is not a response: the
parser returns a :class:`Malformed` value (the host answers 502) instead of raising, because a misbehaving
guest is data, not an error of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

GATEWAY_INTERFACE = "CGI/1.1"
SERVER_SOFTWARE = "tracer-serve WAGI/1"
MATCHED_ROUTE = "/..."

# Request headers not passed to the guest (RFC 3875 §4.1.18; WAGI drops the same two). Content-Type and
# Content-Length have their own meta-variables.
_WITHHELD_HEADERS = frozenset({"AUTHORIZATION", "CONNECTION", "CONTENT_TYPE", "CONTENT_LENGTH"})

# Response headers the guest may not set: hop-by-hop ones (RFC 9110 §7.6.1; WSGI forbids them, PEP 3333) and
# the framing the host computes itself.
_HOST_OWNED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 §5.6.2 field-name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than HTAB (§5.5)
_STATUS = re.compile(r"^([1-5][0-9][0-9])(?:[ \t]+(.*))?$")
_MAX_HEADER_BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class WagiResponse:
    """A parsed guest response: status, headers in order (names lower-cased), body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Malformed:
    """Guest output that is not a WAGI response; ``reason`` is one line for the log, never for the client."""

    reason: str


def request_env(
    environ: Mapping[str, object],
    *,
    content_length: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The guest's environment for a request, from a WSGI (PEP 3333) environ.

    ``extra`` (the ``--env K=V`` pairs) comes first so the request's own variables win, as in WAGI.
    ``content_length`` is the body actually read (after de-chunking), per RFC 3875 §4.1.2.
    """
    env: dict[str, str] = dict(extra or {})
    raw_path = _raw_path(environ)
    path_info = unquote(raw_path, errors="replace")
    query = str(environ.get("QUERY_STRING", "") or "")
    scheme = str(environ.get("wsgi.url_scheme", "http") or "http")
    host, port = _host_port(environ, scheme)
    remote = str(environ.get("REMOTE_ADDR", "") or "")
    env.update(
        {
            "AUTH_TYPE": "",
            "CONTENT_LENGTH": str(content_length),
            "CONTENT_TYPE": str(environ.get("CONTENT_TYPE", "") or ""),
            "GATEWAY_INTERFACE": GATEWAY_INTERFACE,
            "PATH_INFO": path_info,
            "PATH_TRANSLATED": path_info,
            "QUERY_STRING": query,
            "REMOTE_ADDR": remote,
            "REMOTE_HOST": remote,
            "REMOTE_USER": "",
            "REQUEST_METHOD": str(environ.get("REQUEST_METHOD", "GET") or "GET"),
            "SCRIPT_NAME": "",
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1") or "HTTP/1.1"),
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "X_FULL_URL": f"{scheme}://{_authority(host, port, scheme)}{raw_path}" + (f"?{query}" if query else ""),
            "X_MATCHED_ROUTE": MATCHED_ROUTE,
            "X_RAW_PATH_INFO": raw_path,
        }
    )
    for key, value in environ.items():
        if key.startswith("HTTP_") and key[5:] not in _WITHHELD_HEADERS and isinstance(value, str):
            env[key] = value
    return env


def request_args(environ: Mapping[str, object]) -> list[str]:
    """``argv[1:]``: each ``&``-separated query item as sent (``/env?a=1&b`` → ``["a=1", "b"]``).

    WAGI's argv is ``[path, *items]``; the tracer sets ``argv[0]`` to the module name as a command line would,
    so ``argv[1:]`` is where WAGI and ``tracer serve`` agree (the path is in ``PATH_INFO``).
    """
    query = str(environ.get("QUERY_STRING", "") or "")
    return [item for item in query.split("&") if item] if query else []


def parse_response(stdout: bytes) -> WagiResponse | Malformed:
    """Parse a guest's stdout as a CGI response (RFC 3875 §6); never raises."""
    head, sep, body = _split_head(stdout)
    if not sep:
        if not stdout:
            return Malformed("the guest wrote nothing to stdout")
        return Malformed("no blank line after the response headers")
    if not head:
        return Malformed("no response headers before the blank line")
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return Malformed("undecodable header block")
    status: int | None = None
    location: str | None = None
    has_content_type = False
    headers: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        name, colon, value = line.partition(":")
        if not colon:
            return Malformed(f"header line without a colon: {line[:80]!r}")
        name = name.strip()
        value = value.strip(" \t")
        if not _TOKEN.match(name):
            return Malformed(f"invalid header name: {name[:80]!r}")
        if _BAD_VALUE.search(value):
            return Malformed(f"control character in the value of {name!r}")
        lower = name.lower()
        if lower == "status":
            match = _STATUS.match(value)
            if match is None:
                return Malformed(f"invalid status: {value[:80]!r}")
            status = int(match.group(1))
            if status < 200:
                return Malformed(f"informational status {status} cannot end a response")
            continue
        if lower == "location":
            location = value
        elif lower == "content-type":
            has_content_type = True
        elif lower in _HOST_OWNED_RESPONSE_HEADERS:
            continue
        headers.append((lower, value))
    if status is None and location is None and not has_content_type:
        return Malformed("none of content-type, status or location in the response headers")
    if status is None:
        status = 302 if location is not None else 200
    return WagiResponse(status=status, headers=tuple(headers), body=body)


def _split_head(stdout: bytes) -> tuple[bytes, bool, bytes]:
    """Split at the first empty line, accepting LF and CRLF line ends (and a mix, as ``println!`` makes)."""
    limit = min(len(stdout), _MAX_HEADER_BLOCK + 4)
    i = 0
    while i < limit:
        nl = stdout.find(b"\n", i, limit)
        if nl < 0:
            return stdout, False, b""
        line = stdout[i:nl]
        if line in (b"", b"\r"):
            if i == 0:
                return b"", True, stdout[nl + 1 :]
            return stdout[: i - 1].rstrip(b"\r"), True, stdout[nl + 1 :]
        i = nl + 1
    return stdout, False, b""


def _raw_path(environ: Mapping[str, object]) -> str:
    """The path as sent, still percent-encoded. PEP 3333 decodes PATH_INFO; RAW_URI (gunicorn) keeps it."""
    raw_uri = environ.get("RAW_URI")
    if isinstance(raw_uri, str) and raw_uri.startswith("/"):
        return raw_uri.split("?", 1)[0].split("#", 1)[0]
    path = str(environ.get("SCRIPT_NAME", "") or "") + str(environ.get("PATH_INFO", "") or "")
    # WSGI gives PATH_INFO as latin-1-decoded bytes; re-encode what is not plain ASCII.
    return "".join(c if 0x21 <= ord(c) < 0x7F else f"%{ord(c) & 0xFF:02X}" for c in path) or "/"


def _host_port(environ: Mapping[str, object], scheme: str) -> tuple[str, str]:
    """Host and port from the Host header, falling back to the listening address (RFC 3875 §4.1.14)."""
    default_port = str(environ.get("SERVER_PORT", "") or ("443" if scheme == "https" else "80"))
    host_header = environ.get("HTTP_HOST")
    if isinstance(host_header, str) and host_header:
        if host_header.startswith("["):  # IPv6 literal
            end = host_header.find("]")
            host = host_header[: end + 1]
            rest = host_header[end + 1 :]
            port = rest[1:] if rest.startswith(":") and rest[1:].isdigit() else default_port
            return host, port
        name, colon, port = host_header.rpartition(":")
        if colon and port.isdigit():
            return name, port
        return host_header, "443" if scheme == "https" else "80"
    return str(environ.get("SERVER_NAME", "localhost") or "localhost"), default_port


def _authority(host: str, port: str, scheme: str) -> str:
    default = "443" if scheme == "https" else "80"
    return host if port == default else f"{host}:{port}"

