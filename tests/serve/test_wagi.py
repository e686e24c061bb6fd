"""The WAGI ABI on its own: request environment and argv from a WSGI environ, response parsing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tracer._wagi import Malformed, WagiResponse, parse_response, request_args, request_env


def _environ(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/path/test;run",
        "RAW_URI": "/path/test%3brun?foo=bar&x",
        "QUERY_STRING": "foo=bar&x",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "SERVER_NAME": "0.0.0.0",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.168.0.1",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "example.com:3000",
        "HTTP_USER_AGENT": "test",
        "HTTP_X_TEST_HEADER": "hello",
        "HTTP_AUTHORIZATION": "supersecret",
        "HTTP_CONNECTION": "keep-alive",
    }
    base.update(over)
    return base


def test_request_env_has_the_wagi_variables() -> None:
    """The environment carries every variable WAGI documents, with WAGI's values for a root-mounted module."""
    env = request_env(_environ(), content_length=5)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/path/test;run"
    assert env["PATH_TRANSLATED"] == "/path/test;run"
    assert env["X_RAW_PATH_INFO"] == "/path/test%3brun"
    assert env["QUERY_STRING"] == "foo=bar&x"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "3000"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "192.168.0.1"
    assert env["REMOTE_HOST"] == "192.168.0.1"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SCRIPT_NAME"] == ""
    assert env["X_MATCHED_ROUTE"] == "/..."
    assert env["X_FULL_URL"] == "http://example.com:3000/path/test%3brun?foo=bar&x"
    assert env["HTTP_USER_AGENT"] == "test"
    assert env["HTTP_X_TEST_HEADER"] == "hello"
    assert env["AUTH_TYPE"] == "" and env["REMOTE_USER"] == ""
    assert env["SERVER_SOFTWARE"]


def test_request_env_withholds_credentials_and_hop_headers() -> None:
    """Authorization and Connection are not passed to the guest (RFC 3875 §4.1.18)."""
    env = request_env(_environ(), content_length=5)
    assert "HTTP_AUTHORIZATION" not in env
    assert "HTTP_CONNECTION" not in env


def test_request_env_extra_cannot_override_request_variables() -> None:
    """--env pairs are visible but the request's own variables win over them."""
    env = request_env(_environ(), content_length=5, extra={"GREETING": "hi", "REQUEST_METHOD": "DELETE"})
    assert env["GREETING"] == "hi"
    assert env["REQUEST_METHOD"] == "POST"


def test_request_env_without_host_header_uses_the_listening_address() -> None:
    """Without a Host header SERVER_NAME/PORT come from the socket and the default port is left out of the URL."""
    env = request_env(_environ(HTTP_HOST=None, SERVER_NAME="127.0.0.1", SERVER_PORT="80"), content_length=0)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", "80")
    assert env["X_FULL_URL"] == "http://127.0.0.1/path/test%3brun?foo=bar&x"


def test_request_args_are_the_query_items() -> None:
    """argv[1:] is each &-separated query item as sent, as WAGI passes them; no query, no arguments."""
    assert request_args(_environ()) == ["foo=bar", "x"]
    assert request_args(_environ(QUERY_STRING="a=%20&&b")) == ["a=%20", "b"]
    assert request_args(_environ(RAW_URI="/", QUERY_STRING="")) == []


def test_parse_response_headers_blank_line_body() -> None:
    """A content-type, a status line with a reason, extra headers and a binary body are kept."""
    out = b"Content-Type: text/plain\nStatus: 404 Not Found\nX-Thing:  a b \n\nbody\n\x00\xff"
    resp = parse_response(out)
    assert resp == WagiResponse(
        status=404, headers=(("content-type", "text/plain"), ("x-thing", "a b")), body=b"body\n\x00\xff"
    )


def test_parse_response_accepts_crlf() -> None:
    """CRLF line ends are accepted like LF ones."""
    resp = parse_response(b"content-type: a/b\r\nstatus: 201\r\n\r\nhi")
    assert isinstance(resp, WagiResponse)
    assert (resp.status, resp.headers, resp.body) == (201, (("content-type", "a/b"),), b"hi")


def test_parse_response_location_means_302() -> None:
    """A location header without a status is a 302 redirect."""
    resp = parse_response(b"location: /elsewhere\n\n")
    assert isinstance(resp, WagiResponse)
    assert resp.status == 302 and ("location", "/elsewhere") in resp.headers


def test_parse_response_drops_host_owned_headers() -> None:
    """Hop-by-hop and framing headers from the guest are dropped; the host frames the response."""
    resp = parse_response(b"content-type: a/b\ncontent-length: 99\nconnection: close\ntransfer-encoding: x\n\nab")
    assert isinstance(resp, WagiResponse)
    assert resp.headers == (("content-type", "a/b"),)


def test_parse_response_malformed_cases() -> None:
    """Output without a blank line, headers, a colon, a valid name, value or status is Malformed."""
    cases = [
        b"",
        b"content-type: text/plain",
        b"content-type: text/plain\nbody without blank line",
        b"\nbody only",
        b"no colon here\n\n",
        b"bad name: x\n\n",
        b"x-a: \x01\n\n",
        b"status: abc\n\n",
        b"status: 99\n\n",
        b"status: 101 Switching\n\n",
        b"x-only: 1\n\n",
    ]
    for out in cases:
        assert isinstance(parse_response(out), Malformed), out


@given(
    st.lists(st.sampled_from(["content-type: a/b", "x-y: z", "status: 418"]), min_size=1, max_size=5),
    st.sampled_from(["\n", "\r\n"]),
    st.binary(max_size=200),
)
def test_parse_response_body_is_everything_after_the_blank_line(lines: list[str], eol: str, body: bytes) -> None:
    """Whatever the header lines and line ends, the body is byte-for-byte what follows the first blank line."""
    out = (eol.join(["content-type: a/b", *lines]) + eol + eol).encode() + body
    resp = parse_response(out)
    assert isinstance(resp, WagiResponse)
    assert resp.body == body
