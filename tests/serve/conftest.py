"""Fixtures for the server tests: a real ``tracer serve`` subprocess on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_helpers import ECHO_WORKER, Server, start_server


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example worker, production mode, 2 workers, 2 s wall-clock and 32 MiB memory limits."""
    tmp = tmp_path_factory.mktemp("serve")
    server = start_server(tmp, ECHO_WORKER, ["--workers", "2", "--timeout", "2", "--memory", "32MiB"])
    yield server
    server.stop()
