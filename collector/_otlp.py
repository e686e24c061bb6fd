"""Direct OTLP encoding of the SDK's finished spans and log records: protobuf wire bytes (OTLP/gRPC, OTLP/HTTP,
the spool) or OTLP/JSON text (the embedded file exporter), split into requests under a size limit.

Why not the SDK's ``encode_spans``/``encode_logs``: they build a protobuf message object per span, attribute and
value (~150–250 µs per span here), hash the resource once per span, and the file exporter then walked those
messages again to make JSON (another ~150–350 µs). Here each item is written once, straight to the wire format
its transport needs, and the parts that repeat — the resource and scope envelope, attribute key/value pairs
such as ``faas.name`` or a crash loop's stack trace — are encoded once and reused from bounded caches.

The output is the SDK encoder's, field for field (tests compare the parsed messages on real telemetry and on
random attribute values): the same fields, presence and ``flags``; attributes whose value cannot be encoded are
left out one by one, as the SDK does (it logs them); an item that cannot be encoded at all is reported so the
caller counts it as ``encode_error``. Fields are written in field-number order, as protobuf serializers do.

Splitting: a protobuf request never exceeds ``limit`` bytes (the size is counted as it is built, envelope
included). An OTLP/JSON line is split by its own byte size, which is always larger than the same request in
protobuf (hex ids, field names, decimal timestamps), so every line replays as a request under ``limit``; an item
whose JSON alone is over ``limit`` gets a line of its own when its protobuf form fits, else it is ``too_large``.
"""

from __future__ import annotations

import base64
import logging
import struct
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring as _jstr  # C; json.dumps(ensure_ascii=False)'s string encoder
from typing import Any, Callable, Literal

_log = logging.getLogger("collector")

Format = Literal["protobuf", "json"]
Parts = list[tuple[bytes, int]]  # (serialized request or JSON line, items in it)

_M64 = (1 << 64) - 1
_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack
_SMALL = [bytes([i]) for i in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


# -- values (common.v1.AnyValue), as the SDK's _encode_value -------------------------------------------------------


def _pb_value(v: Any) -> bytes:
    """AnyValue message body."""
    if v is None:
        return b""
    if isinstance(v, bool):
        return b"\x10\x01" if v else b"\x10\x00"
    if isinstance(v, str):
        return _ld(b"\x0a", v.encode("utf-8"))
    if isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError(f"int attribute out of int64 range: {v}")
        return b"\x18" + _varint(v & _M64)
    if isinstance(v, float):
        return b"\x21" + _pack_d(v)
    if isinstance(v, bytes):
        return _ld(b"\x3a", v)
    if isinstance(v, Sequence):
        return _ld(b"\x2a", b"".join([_ld(b"\x0a", _pb_value(x)) for x in v]))
    if isinstance(v, Mapping):
        return _ld(b"\x32", b"".join([_ld(b"\x0a", _pb_kv(str(k), x)) for k, x in v.items()]))
    raise TypeError(f"Invalid type {type(v)} of value {v}")


def _js_float(v: float) -> str:
    if v != v:
        return '"NaN"'
    if v in (float("inf"), float("-inf")):
        return '"Infinity"' if v > 0 else '"-Infinity"'
    return float.__repr__(v)


def _js_value(v: Any) -> str:
    if v is None:
        return "{}"
    if isinstance(v, bool):
        return '{"boolValue":true}' if v else '{"boolValue":false}'
    if isinstance(v, str):
        v.encode("utf-8")  # as strict as protobuf: lone surrogates are an error, not a JSON escape
        return '{"stringValue":' + _jstr(v) + "}"
    if isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError(f"int attribute out of int64 range: {v}")
        return '{"intValue":"%d"}' % v
    if isinstance(v, float):
        return '{"doubleValue":' + _js_float(v) + "}"
    if isinstance(v, bytes):
        return '{"bytesValue":"' + base64.b64encode(v).decode("ascii") + '"}' if v else '{"bytesValue":""}'
    if isinstance(v, Sequence):
        return '{"arrayValue":' + ('{"values":[' + ",".join([_js_value(x) for x in v]) + "]}" if v else "{}") + "}"
    if isinstance(v, Mapping):
        items = [_js_kv(str(k), x) for k, x in v.items()]
        return '{"kvlistValue":' + ('{"values":[' + ",".join(items) + "]}" if items else "{}") + "}"
    raise TypeError(f"Invalid type {type(v)} of value {v}")


def _pb_kv(k: str, v: Any) -> bytes:
    key = _ld(b"\x0a", k.encode("utf-8")) if k else b""
    return key + _ld(b"\x12", _pb_value(v))


def _js_kv(k: str, v: Any) -> str:
    if k:
        k.encode("utf-8")
        return '{"key":' + _jstr(k) + ',"value":' + _js_value(v) + "}"
    return '{"value":' + _js_value(v) + "}"


_CACHEABLE = (str, bool, int, float)


class _KVCache:
    """Encoded key/value pairs by (key, type, value): most attributes repeat from record to record. Bounded: a
    small tier for short values, a few slots for long ones (stack traces), each emptied when full."""

    def __init__(self, encode: Callable[[str, Any], Any]) -> None:
        self.encode = encode
        self.small: dict[tuple[str, type, Any], Any] = {}
        self.large: dict[tuple[str, type, Any], Any] = {}

    def get(self, k: str, v: Any) -> Any:
        t = type(v)
        if t not in _CACHEABLE or (t is float and v == 0.0):  # 0.0 == -0.0, but their encodings differ
            return self.encode(k, v)
        key = (k, t, v)
        hit = self.small.get(key)
        if hit is not None:
            return hit
        if t is str and len(v) > 256:
            hit = self.large.get(key)
            if hit is not None:
                return hit
            out = self.encode(k, v)
            if len(v) <= 65536:
                if len(self.large) >= 16:
                    self.large.clear()
                self.large[key] = out
            return out
        out = self.encode(k, v)
        if len(self.small) >= 4096:
            self.small.clear()
        self.small[key] = out
        return out


_PB_KV = _KVCache(_pb_kv)
_JS_KV = _KVCache(_js_kv)


def _encoded_pairs(cache: Any, attrs: Any) -> list[Any]:
    """Each attribute's encoded key/value from ``cache`` (protobuf or JSON); an attribute that cannot be encoded
    is left out (logged), as the SDK does."""
    out = []
    small, get = cache.small, cache.get
    for k, v in attrs.items():
        try:
            hit = small.get((k, type(v), v))  # inlined cache hit: most attributes repeat
        except TypeError:  # an unhashable value (list, dict): not cached
            hit = None
        if hit is None:
            try:
                hit = get(k, v)
            except Exception as exc:  # noqa: BLE001
                _log.warning("collector: attribute %r not encodable: %s", k, exc)
                continue
        out.append(hit)
    return out


def _pb_attrs(tag: bytes, attrs: Any) -> bytes:
    """Repeated KeyValue fields under ``tag``."""
    if not attrs:
        return b""
    return b"".join([_ld(tag, hit) for hit in _encoded_pairs(_PB_KV, attrs)])


def _js_attrs(attrs: Any) -> str:
    if not attrs:
        return ""
    return ",".join(_encoded_pairs(_JS_KV, attrs))


def _pb_uint(tag: bytes, n: int | None) -> bytes:
    return tag + _varint(n) if n else b""


def _js_uint(name: str, n: int | None) -> str:
    return f',"{name}":{n}' if n else ""


def _id_hex(n: int, size: int) -> str:
    return n.to_bytes(size, "big").hex()


def _trace_state(ts: Any) -> str:
    return ",".join([f"{k}={v}" for k, v in ts.items()]) if ts is not None else ""


# -- spans (trace.v1.Span), as the SDK's _encode_span ---------------------------------------------------------------

_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200


def _flags(parent: Any) -> int:
    return _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if parent and parent.is_remote else 0)


def _pb_span(s: Any) -> bytes:
    ctx = s.get_span_context()
    out = [b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"), b"\x12\x08" + ctx.span_id.to_bytes(8, "big")]
    ts = _trace_state(ctx.trace_state)
    if ts:
        out.append(_ld(b"\x1a", ts.encode("utf-8")))
    parent = s.parent
    if parent:
        out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if s.name:
        out.append(_ld(b"\x2a", s.name.encode("utf-8")))
    out.append(b"\x30" + _SMALL[s.kind.value + 1])
    if s.start_time:
        out.append(b"\x39" + _pack_q(s.start_time))
    if s.end_time:
        out.append(b"\x41" + _pack_q(s.end_time))
    out.append(_pb_attrs(b"\x4a", s.attributes))
    out.append(_pb_uint(b"\x50", s.dropped_attributes))
    for e in s.events or ():
        body = b"\x09" + _pack_q(e.timestamp) if e.timestamp else b""
        if e.name:
            body += _ld(b"\x12", e.name.encode("utf-8"))
        body += _pb_attrs(b"\x1a", e.attributes) + _pb_uint(b"\x20", e.dropped_attributes)
        out.append(_ld(b"\x5a", body))
    out.append(_pb_uint(b"\x60", s.dropped_events))
    for link in s.links or ():
        lc = link.context
        body = (b"\x0a\x10" + lc.trace_id.to_bytes(16, "big") + b"\x12\x08" + lc.span_id.to_bytes(8, "big")
                + _pb_attrs(b"\x22", link.attributes) + _pb_uint(b"\x28", link.dropped_attributes)
                + b"\x35" + _pack_i(_flags(lc)))
        out.append(_ld(b"\x6a", body))
    out.append(_pb_uint(b"\x70", s.dropped_links))
    status = s.status
    if status is not None:
        body = _ld(b"\x12", status.description.encode("utf-8")) if status.description else b""
        if status.status_code.value:
            body += b"\x18" + _SMALL[status.status_code.value]
        out.append(_ld(b"\x7a", body))
    out.append(b"\x85\x01" + _pack_i(_flags(parent)))
    return b"".join(out)


def _js_span(s: Any) -> str:
    ctx = s.get_span_context()
    out = ['{"traceId":"', _id_hex(ctx.trace_id, 16), '","spanId":"', _id_hex(ctx.span_id, 8), '"']
    ts = _trace_state(ctx.trace_state)
    if ts:
        out.append(',"traceState":' + _jstr(ts))
    parent = s.parent
    if parent:
        out.append(',"parentSpanId":"' + _id_hex(parent.span_id, 8) + '"')
    if s.name:
        s.name.encode("utf-8")
        out.append(',"name":' + _jstr(s.name))
    out.append(',"kind":%d' % (s.kind.value + 1))
    if s.start_time:
        out.append(',"startTimeUnixNano":"%d"' % s.start_time)
    if s.end_time:
        out.append(',"endTimeUnixNano":"%d"' % s.end_time)
    attrs = _js_attrs(s.attributes)
    if attrs:
        out.append(',"attributes":[' + attrs + "]")
    out.append(_js_uint("droppedAttributesCount", s.dropped_attributes))
    if s.events:
        events = []
        for e in s.events:
            parts = ['"timeUnixNano":"%d"' % e.timestamp] if e.timestamp else []
            if e.name:
                e.name.encode("utf-8")
                parts.append('"name":' + _jstr(e.name))
            ea = _js_attrs(e.attributes)
            if ea:
                parts.append('"attributes":[' + ea + "]")
            if e.dropped_attributes:
                parts.append('"droppedAttributesCount":%d' % e.dropped_attributes)
            events.append("{" + ",".join(parts) + "}")
        out.append(',"events":[' + ",".join(events) + "]")
    out.append(_js_uint("droppedEventsCount", s.dropped_events))
    if s.links:
        links = []
        for link in s.links:
            lc = link.context
            parts = ['"traceId":"' + _id_hex(lc.trace_id, 16) + '"', '"spanId":"' + _id_hex(lc.span_id, 8) + '"']
            la = _js_attrs(link.attributes)
            if la:
                parts.append('"attributes":[' + la + "]")
            if link.dropped_attributes:
                parts.append('"droppedAttributesCount":%d' % link.dropped_attributes)
            parts.append('"flags":%d' % _flags(lc))
            links.append("{" + ",".join(parts) + "}")
        out.append(',"links":[' + ",".join(links) + "]")
    out.append(_js_uint("droppedLinksCount", s.dropped_links))
    status = s.status
    if status is not None:
        parts = []
        if status.description:
            status.description.encode("utf-8")
            parts.append('"message":' + _jstr(status.description))
        if status.status_code.value:
            parts.append('"code":%d' % status.status_code.value)
        out.append(',"status":{' + ",".join(parts) + "}")
    out.append(',"flags":%d}' % _flags(parent))
    return "".join(out)


# -- log records (logs.v1.LogRecord), as the SDK's _encode_log ------------------------------------------------------


def _pb_log(item: Any) -> bytes:
    r = item.log_record
    out = []
    if r.timestamp:
        out.append(b"\x09" + _pack_q(r.timestamp))
    sev = getattr(r.severity_number, "value", None)
    if sev:
        out.append(b"\x10" + _varint(sev))
    if r.severity_text:
        out.append(_ld(b"\x1a", r.severity_text.encode("utf-8")))
    out.append(_ld(b"\x2a", _pb_value(r.body)))
    out.append(_pb_attrs(b"\x32", r.attributes))
    out.append(_pb_uint(b"\x38", item.dropped_attributes))
    flags = int(r.trace_flags)
    if flags:
        out.append(b"\x45" + _pack_i(flags))
    if r.trace_id:
        out.append(b"\x4a\x10" + r.trace_id.to_bytes(16, "big"))
    if r.span_id:
        out.append(b"\x52\x08" + r.span_id.to_bytes(8, "big"))
    if r.observed_timestamp:
        out.append(b"\x59" + _pack_q(r.observed_timestamp))
    if r.event_name:
        out.append(_ld(b"\x62", r.event_name.encode("utf-8")))
    return b"".join(out)


def _js_log(item: Any) -> str:
    r = item.log_record
    out = []
    if r.timestamp:
        out.append('"timeUnixNano":"%d"' % r.timestamp)
    sev = getattr(r.severity_number, "value", None)
    if sev:
        out.append('"severityNumber":%d' % sev)
    if r.severity_text:
        r.severity_text.encode("utf-8")
        out.append('"severityText":' + _jstr(r.severity_text))
    out.append('"body":' + _js_value(r.body))
    attrs = _js_attrs(r.attributes)
    if attrs:
        out.append('"attributes":[' + attrs + "]")
    if item.dropped_attributes:
        out.append('"droppedAttributesCount":%d' % item.dropped_attributes)
    flags = int(r.trace_flags)
    if flags:
        out.append('"flags":%d' % flags)
    if r.trace_id:
        out.append('"traceId":"' + _id_hex(r.trace_id, 16) + '"')
    if r.span_id:
        out.append('"spanId":"' + _id_hex(r.span_id, 8) + '"')
    if r.observed_timestamp:
        out.append('"observedTimeUnixNano":"%d"' % r.observed_timestamp)
    if r.event_name:
        r.event_name.encode("utf-8")
        out.append('"eventName":' + _jstr(r.event_name))
    return "{" + ",".join(out) + "}"


# -- envelopes: resource and instrumentation scope, encoded once per object ---------------------------------------


def _pb_resource(resource: Any) -> bytes:
    return _pb_attrs(b"\x0a", resource.attributes)


def _js_resource(resource: Any) -> str:
    attrs = _js_attrs(resource.attributes)
    return '{"attributes":[' + attrs + "]}" if attrs else "{}"


def _pb_scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    out = _ld(b"\x0a", scope.name.encode("utf-8")) if scope.name else b""
    if scope.version:
        out += _ld(b"\x12", scope.version.encode("utf-8"))
    return out + _pb_attrs(b"\x1a", scope.attributes)


def _js_scope(scope: Any) -> str:
    if scope is None:
        return "{}"
    parts = []
    if scope.name:
        parts.append('"name":' + _jstr(scope.name))
    if scope.version:
        parts.append('"version":' + _jstr(scope.version))
    attrs = _js_attrs(scope.attributes)
    if attrs:
        parts.append('"attributes":[' + attrs + "]")
    return "{" + ",".join(parts) + "}"


class _Envelopes:
    """(resource, scope) objects → their encoding and schema URLs, by identity (both are immutable)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str], tuple[Any, Any, tuple[bytes, bytes, str, str]]] = {}

    def get(self, fmt: Format, resource: Any, scope: Any) -> tuple[bytes, bytes, str, str]:
        key = (id(resource), id(scope), fmt)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is resource and hit[1] is scope:
            return hit[2]
        if fmt == "protobuf":
            r, s = _pb_resource(resource), _pb_scope(scope)
        else:
            r, s = _js_resource(resource).encode("utf-8"), _js_scope(scope).encode("utf-8")
        value = (r, s, resource.schema_url or "", (scope.schema_url or "") if scope is not None else "")
        if len(self._cache) >= 64:
            self._cache.clear()
        self._cache[key] = (resource, scope, value)
        return value


_ENVELOPES = _Envelopes()


# -- requests -----------------------------------------------------------------------------------------------------

# signal → (top-level JSON key, scope-level JSON key, item JSON key)
_JSON_KEYS = {"traces": ("resourceSpans", "scopeSpans", "spans"), "logs": ("resourceLogs", "scopeLogs", "logRecords")}
_ENCODERS: dict[str, tuple[Callable[[Any], bytes], Callable[[Any], str]]] = {
    "traces": (_pb_span, _js_span),
    "logs": (_pb_log, _js_log),
}
# Bytes a (resource, scope) group adds besides the encoded resource, scope and schema URLs, at most: protobuf tags
# and length varints of the request field, ResourceX, its resource, ScopeX, its scope, two schema URLs; JSON's
# fixed keys and brackets.
_GROUP_OVERHEAD = {"protobuf": 7 * 6, "json": 128}


def _pb_request(groups: list[tuple[tuple[bytes, bytes, str, str], list[bytes]]]) -> bytes:
    out = []
    for (res, scope, res_schema, scope_schema), items in groups:
        scoped = _ld(b"\x0a", scope) + b"".join(items)
        if scope_schema:
            scoped += _ld(b"\x1a", scope_schema.encode("utf-8"))
        body = _ld(b"\x0a", res) + _ld(b"\x12", scoped)
        if res_schema:
            body += _ld(b"\x1a", res_schema.encode("utf-8"))
        out.append(_ld(b"\x0a", body))
    return b"".join(out)


def _js_request(signal: str, groups: list[tuple[tuple[bytes, bytes, str, str], list[bytes]]]) -> bytes:
    top, scope_key, item_key = _JSON_KEYS[signal]
    out = []
    for (res, scope, res_schema, scope_schema), items in groups:
        scoped = b'{"scope":' + scope + b',"' + item_key.encode() + b'":[' + b",".join(items) + b"]"
        if scope_schema:
            scoped += b',"schemaUrl":' + _jstr(scope_schema).encode("utf-8")
        body = b'{"resource":' + res + b',"' + scope_key.encode() + b'":[' + scoped + b"}]"
        if res_schema:
            body += b',"schemaUrl":' + _jstr(res_schema).encode("utf-8")
        out.append(body + b"}")
    return b'{"' + top.encode() + b'":[' + b",".join(out) + b"]}"


def encode_batch(signal: str, items: Sequence[Any], fmt: Format, limit: int) -> tuple[Parts, int, int]:
    """Spans or log records → (requests, each with its item count; items too large for any request; items that
    could not be encoded). Requests keep the items' order and group them by resource and scope."""
    pb_item, js_item = _ENCODERS[signal]
    protobuf = fmt == "protobuf"
    overhead = _GROUP_OVERHEAD[fmt]
    parts: Parts = []
    too_large = errors = 0
    # The part being built: groups in first-seen order, its size so far and its item count.
    groups: dict[tuple[bytes, bytes, str, str], list[bytes]] = {}
    size = n = 0

    def close() -> None:
        nonlocal groups, size, n
        if n:
            grouped = list(groups.items())
            parts.append((_pb_request(grouped) if protobuf else _js_request(signal, grouped), n))
        groups, size, n = {}, 0, 0

    for item in items:
        try:
            env = _ENVELOPES.get(fmt, item.resource, item.instrumentation_scope)
            if protobuf:
                body = pb_item(item)
                encoded = _ld(b"\x12", body)
            else:
                encoded = js_item(item).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - one bad item must not cost the batch
            _log.warning("collector: a %s item could not be encoded: %s: %s", signal, type(exc).__name__, exc)
            errors += 1
            continue
        envelope_size = len(env[0]) + len(env[1]) + len(env[2]) + len(env[3]) + overhead
        alone = len(encoded) + envelope_size
        if alone > limit:
            if not protobuf:
                try:  # JSON over the limit: what counts is the request it replays as
                    pb_env = _ENVELOPES.get("protobuf", item.resource, item.instrumentation_scope)
                    pb_size = len(_ld(b"\x12", pb_item(item))) + sum(map(len, pb_env)) + _GROUP_OVERHEAD[
                        "protobuf"]
                except Exception:  # noqa: BLE001
                    pb_size = alone
                if pb_size <= limit:
                    close()
                    groups[env] = [encoded]
                    n = 1
                    close()
                    continue
            too_large += 1
            continue
        extra = len(encoded) + 1 + (0 if env in groups else envelope_size)
        if n and size + extra > limit:
            close()
            extra = len(encoded) + 1 + envelope_size
        groups.setdefault(env, []).append(encoded)
        size += extra
        n += 1
    close()
    return parts, too_large, errors
