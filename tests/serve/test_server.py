"""``tracer serve`` end to end: real HTTP requests against a running server with the example WAGI worker."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_helpers import ECHO_WORKER, ROOT, Server, free_port, start_server


def _assert_opaque_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected
    rid = headers["x-request-id"]
    assert len(rid) == 16
    # The body names the request id and nothing from inside the guest.
    assert body.decode().splitlines()[-1] == f"request id: {rid}"
    assert len(body.decode().splitlines()) == 2


def test_echo_1kib_body(echo_server: Server) -> None:
    """A 1 KiB binary body comes back byte for byte with the request's content type and a request id."""
    body = os.urandom(1024)
    status, headers, got = echo_server.request(
        "POST", "/echo", body=body, headers={"content-type": "application/x-test"}
    )
    assert status == 200
    assert got == body
    assert headers["content-type"] == "application/x-test"
    assert headers["x-echo-length"] == "1024"
    assert headers["content-length"] == "1024"
    assert len(headers["x-request-id"]) == 16


def test_keep_alive_serves_many_requests_on_one_connection(echo_server: Server) -> None:
    """Several requests travel over one TCP connection (keep-alive), each answered in full."""
    conn = http.client.HTTPConnection("127.0.0.1", echo_server.port, timeout=10)
    try:
        conn.connect()
        first_sock = conn.sock
        for i in range(5):
            payload = f"request {i}".encode()
            conn.request("POST", "/echo", body=payload)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, payload)
            assert not resp.will_close
        assert conn.sock is first_sock
    finally:
        conn.close()


def test_wagi_environment_reaches_the_guest(echo_server: Server) -> None:
    """Method, path, query, headers and WAGI's own variables are in the guest's environment."""
    status, _, body = echo_server.request("GET", "/env?a=1&b", headers={"x-custom": "yes", "authorization": "s"})
    assert status == 200
    env = dict(line.split("=", 1) for line in body.decode().splitlines())
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/env"
    assert env["QUERY_STRING"] == "a=1&b"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert "HTTP_AUTHORIZATION" not in env
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["X_FULL_URL"] == f"http://127.0.0.1:{echo_server.port}/env?a=1&b"
    assert env["SERVER_PORT"] == str(echo_server.port)


def test_guest_status_and_redirect(echo_server: Server) -> None:
    """The guest's status: header sets the status; a location: header alone makes a 302."""
    assert echo_server.request("GET", "/status/418")[0] == 418
    status, headers, _ = echo_server.request("GET", "/redirect")
    assert (status, headers["location"]) == (302, "/echo")
    assert echo_server.request("GET", "/nowhere")[0] == 404


def test_panic_is_500_while_concurrent_requests_succeed(echo_server: Server) -> None:
    """Panicking requests answer 500 with only a request id, and echo requests running alongside all succeed."""
    def call(i: int) -> tuple[str, int, dict[str, str], bytes, bytes]:
        if i % 3 == 0:
            return ("panic", *echo_server.request("GET", "/panic"), b"")
        body = os.urandom(1024)
        return ("echo", *echo_server.request("POST", "/echo", body=body), body)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(30)))
    panics = [r for r in results if r[0] == "panic"]
    echoes = [r for r in results if r[0] == "echo"]
    assert len(panics) == 10 and len(echoes) == 20
    for _, status, headers, body, _ in panics:
        _assert_opaque_error(status, headers, body, 500)
        assert b"unwrap" not in body and b"main.rs" not in body
    for _, status, _, body, sent in echoes:
        assert (status, body) == (200, sent)
    # Each request id is different: one per request.
    assert len({h["x-request-id"] for _, _, h, _, _ in results}) == 30


def test_infinite_loop_is_stopped_by_the_wall_clock_limit(echo_server: Server) -> None:
    """A guest that never returns is interrupted by the limit and answered 504; the next request is served."""
    status, headers, body = echo_server.request("GET", "/loop", timeout=30)
    _assert_opaque_error(status, headers, body, 504)
    assert echo_server.request("POST", "/echo", body=b"after")[2] == b"after"


def test_memory_bomb_is_stopped_by_the_memory_limit(echo_server: Server) -> None:
    """A guest allocating without end hits the memory cap, answers 500, and leaves nothing behind."""
    status, headers, body = echo_server.request("GET", "/membomb", timeout=30)
    _assert_opaque_error(status, headers, body, 500)
    assert echo_server.request("POST", "/echo", body=b"still here")[2] == b"still here"


def test_malformed_response_is_502(echo_server: Server) -> None:
    """Guest output without the blank line after its headers is not passed on: 502 with a request id."""
    status, headers, body = echo_server.request("GET", "/malformed")
    _assert_opaque_error(status, headers, body, 502)


def test_failures_are_logged_with_the_request_id(echo_server: Server) -> None:
    """A panic's console lines reach the server's stderr tagged with the request id."""
    _, headers, _ = echo_server.request("GET", "/panic")
    rid = headers["x-request-id"]
    deadline = time.monotonic() + 10
    while f"[{rid}] stderr: thread 'main' panicked" not in echo_server.log():
        assert time.monotonic() < deadline, echo_server.log()
        time.sleep(0.05)


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    """A body past --max-body is refused with 413, by Content-Length or while reading a chunked body."""
    server = start_server(tmp_path, ECHO_WORKER, ["--workers", "1", "--max-body", "4KiB"])
    try:
        assert server.request("POST", "/echo", body=b"x" * 4096)[0] == 200
        status, headers, _ = server.request("POST", "/echo", body=b"x" * 4097)
        assert status == 413 and "x-request-id" in headers
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/echo", body=iter([b"y" * 3000, b"y" * 3000]), encode_chunked=True)
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        assert server.stop() == 0
    # This server ran with OTEL_SDK_DISABLED=true: no telemetry was written.
    assert not (tmp_path / "telemetry").exists()


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    """A request running when SIGTERM arrives still gets its answer, then the server exits 0."""
    server = start_server(tmp_path, ECHO_WORKER, ["--workers", "1", "--timeout", "2"])
    worker = int(subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.proc.pid)],
                                capture_output=True, text=True).stdout.split()[0])
    before = _cpu_ticks(worker)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.request, "GET", "/loop")
        # The guest is running once the worker burns CPU (the loop spins for the 2 s limit).
        deadline = time.monotonic() + 20
        while _cpu_ticks(worker) - before < 20:
            assert time.monotonic() < deadline and not pending.done()
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        status, headers, _ = pending.result(timeout=30)
    assert status == 504 and "x-request-id" in headers
    assert server.proc.wait(timeout=30) == 0


def test_dev_mode_shows_the_symbolized_report_and_fuel_stops_a_loop(tmp_path: Path) -> None:
    """With --dev a panic's 500 body is the report (panic message, stack); --fuel stops a loop as exceededCpu."""
    server = start_server(tmp_path, ECHO_WORKER, ["--workers", "1", "--dev", "--fuel", "50000000"])
    try:
        status, headers, body = server.request("GET", "/panic")
        text = body.decode()
        assert status == 500 and headers["content-type"].startswith("text/plain")
        assert f"request id {headers['x-request-id']}" in text
        assert "panic: called `Option::unwrap()` on a `None` value at " in text and "src/main.rs:" in text
        assert "lookup_user" in text
        status, _, body = server.request("GET", "/loop")
        assert status == 504 and "outcome: exceededCpu" in body.decode()
    finally:
        assert server.stop() == 0


def test_saturated_worker_answers_503_with_retry_after(tmp_path: Path) -> None:
    """Past --max-queue waiting requests a worker answers 503 + Retry-After at once instead of queueing."""
    server = start_server(tmp_path, ECHO_WORKER, ["--workers", "1", "--max-queue", "1", "--timeout", "1"])
    try:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: server.request("GET", "/loop"), range(6)))
        statuses = sorted(r[0] for r in results)
        assert set(statuses) <= {503, 504}
        assert 503 in statuses and 504 in statuses
        assert all(r[1]["retry-after"] == "1" for r in results if r[0] == 503)
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        assert server.stop() == 0


def test_module_change_is_served_without_restart(tmp_path: Path) -> None:
    """Replacing the module file makes the next request run the new version (the dev loop)."""
    module = tmp_path / "worker.wasm"
    shutil.copy(ECHO_WORKER, module)
    server = start_server(tmp_path, module, ["--workers", "1"])
    try:
        assert server.request("GET", "/status/201")[0] == 201
        # panics.rs's WAGI echo scenario: argv[1] is the first query item (WAGI argv), it answers x-path.
        replacement = tmp_path / "new.wasm"
        shutil.copy(ROOT / "tests" / "fixtures" / "panics-O1.stripped.wasm", replacement)
        os.replace(replacement, module)
        status, headers, body = server.request("POST", "/any?echo", body=b"v2")
        assert (status, headers.get("x-path"), body) == (200, "/any", b"v2")
    finally:
        assert server.stop() == 0


def _serve_status(args: list[str], tmp_path: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACER_")}
    env.update({"PYTHONPATH": str(ROOT), "TRACER_CACHE_DIR": str(tmp_path / "cache"), "OTEL_SDK_DISABLED": "true"})
    proc = subprocess.run(
        [sys.executable, "-m", "tracer._cli", "serve", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    return proc.returncode, proc.stderr


def test_bad_invocations_are_one_line_and_a_documented_status(tmp_path: Path) -> None:
    """A missing module (66), a non-wasm file or one without _start (65), a bad --listen (64) and a busy port (69)
    end at once with one line."""
    status, err = _serve_status([str(tmp_path / "missing.wasm")], tmp_path)
    assert status == 66 and len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm at all")
    status, err = _serve_status([str(junk), "--listen", f"127.0.0.1:{free_port()}"], tmp_path)
    assert status == 65 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    lib = ROOT / "tests" / "fixtures" / "lib.wasm"  # a cdylib: valid wasm, but no _start to serve with
    status, err = _serve_status([str(lib), "--listen", f"127.0.0.1:{free_port()}"], tmp_path)
    assert status == 65 and "no _start export" in err and len(err.strip().splitlines()) == 1
    status, err = _serve_status([str(ECHO_WORKER), "--listen", "localhost"], tmp_path)
    assert status == 64 and "Traceback" not in err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, err = _serve_status([str(ECHO_WORKER), "--listen", f"127.0.0.1:{port}"], tmp_path)
    assert status == 69 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_are_served_by_the_host(echo_server: Server, path: str) -> None:
    """/healthz and /readyz answer 200 from the host, without running the guest (no request id)."""
    status, headers, _ = echo_server.request("GET", path)
    assert status == 200 and "x-request-id" not in headers


def _spans(telemetry_dir: Path) -> list[dict[str, object]]:
    spans: list[dict[str, object]] = []
    for line in (telemetry_dir / "traces.jsonl").read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    span["attrs"] = {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}
                    spans.append(span)
    return spans


def _log_records(telemetry_dir: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for line in (telemetry_dir / "logs.jsonl").read_text().splitlines():
        for rl in json.loads(line)["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                out.extend(sl["logRecords"])
    return out


@pytest.mark.parametrize("span_mode", ["single", "separate"])
def test_traceparent_server_span_reload_and_sigterm_flush(tmp_path: Path, span_mode: str) -> None:
    """After SIGTERM the telemetry files hold the request's SERVER span under the caller's traceparent with http.*
    attributes (the invocation span itself, or its parent with TRACER_SERVER_SPAN=separate), console logs in
    the invocation's context, and a cold start per module version."""
    module = tmp_path / "worker.wasm"
    shutil.copy(ECHO_WORKER, module)
    # Export delays of a minute: whatever is in the files after the stop was flushed by SIGTERM's shutdown.
    env = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000",
           "OTEL_METRIC_EXPORT_INTERVAL": "60000", "TRACER_SERVER_SPAN": span_mode}
    server = start_server(tmp_path, module, ["--workers", "1"], env=env, telemetry=True)
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    try:
        status, headers, _ = server.request(
            "GET", "/log?x=1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "user-agent": "t/1"}
        )
        assert status == 200
        log_rid = headers["x-request-id"]
        assert server.request("GET", "/panic")[0] == 500
        replacement = tmp_path / "new.wasm"
        shutil.copy(ROOT / "tests" / "fixtures" / "panics-O1.stripped.wasm", replacement)
        os.replace(replacement, module)
        assert server.request("POST", "/v2?echo", body=b"v2")[0] == 200
        assert not (tmp_path / "telemetry" / "traces.jsonl").exists()
    finally:
        assert server.stop() == 0
    telemetry = tmp_path / "telemetry"
    spans = _spans(telemetry)
    server_spans = [s for s in spans if s["kind"] == 2]
    invocations = [s for s in spans if s["name"] == "invoke _start"]
    assert len(server_spans) == 3 and len(invocations) == 3
    first = next(s for s in server_spans if s["traceId"] == trace_id)
    assert first["parentSpanId"] == parent_id
    attrs = first["attrs"]
    assert isinstance(attrs, dict)
    assert attrs["http.request.method"] == "GET"
    assert attrs["url.path"] == "/log" and attrs["url.query"] == "x=1"
    assert int(attrs["http.response.status_code"]) == 200
    assert attrs["server.address"] == "127.0.0.1" and int(attrs["server.port"]) == server.port
    assert attrs["user_agent.original"] == "t/1"
    invocation = next(s for s in invocations if s["attrs"]["faas.invocation_id"] == log_rid)  # type: ignore[index]
    assert invocation["traceId"] == trace_id and invocation["attrs"]["faas.trigger"] == "http"  # type: ignore[index]
    if span_mode == "single":
        assert invocation is first
    else:
        assert first["name"] == "GET" and invocation["kind"] == 1 and invocation["parentSpanId"] == first["spanId"]
    console = [r for r in _log_records(telemetry) if r["body"] == {"stringValue": "handling /log"}]
    assert len(console) == 1
    assert console[0]["spanId"] == invocation["spanId"] and console[0]["traceId"] == trace_id
    panic_span = next(s for s in server_spans if s["attrs"]["http.response.status_code"] in ("500", 500))  # type: ignore[index]
    assert panic_span["status"].get("code") == 2  # type: ignore[attr-defined]
    # Cold starts: the first request of each module version.
    cold = sorted((s["startTimeUnixNano"], s["attrs"]["faas.coldstart"], s["attrs"]["tracer.module.sha256"])  # type: ignore[index]
                  for s in invocations)
    assert [c[1] for c in cold] == [True, False, True]
    assert cold[0][2] == cold[1][2] != cold[2][2]
    assert "faas.invocations" in (telemetry / "metrics.jsonl").read_text()
