"""Dagster servers the tests start on 127.0.0.1: a free port, their GraphQL API, waiting
for them, and stopping them with everything they started (one process group)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

UNREACHABLE = (urllib.error.URLError, ConnectionError, TimeoutError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return bool(response.status == 200)
    except UNREACHABLE:
        return False


def graphql(port: int, query: str, **variables: Any) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload
    data: dict[str, Any] = payload["data"]
    return data


def wait_until(
    condition: Callable[[], Any], seconds: float, what: str, server: subprocess.Popen[Any]
) -> None:
    """Poll ``condition`` (a server not answering yet counts as not yet) until it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited ({server.returncode}) while waiting for {what}")
        with contextlib.suppress(*UNREACHABLE):
            if condition():
                return
        time.sleep(0.5)
    pytest.fail(f"timed out after {seconds}s waiting for {what}")


def stop(server: subprocess.Popen[Any]) -> None:
    """The server, its code server and any run it launched (one process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # children left after the server exited
        os.killpg(server.pid, signal.SIGKILL)


IMMEDIATE_RUNS = (
    # runs start right away (the default queue needs the daemon); no telemetry
    "run_coordinator:\n"
    "  module: dagster._core.run_coordinator\n"
    "  class: DefaultRunCoordinator\n"
    "telemetry:\n"
    "  enabled: false\n"
)


def immediate_home(home: Path) -> Path:
    """A Dagster home whose runs start without a daemon."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(IMMEDIATE_RUNS)
    return home


def start_webserver(folder: Path, home: Path, log: Path) -> tuple[subprocess.Popen[Any], int]:
    """``dagster-webserver -w workspace.yaml`` in ``folder`` on ``home``, on a free port of
    127.0.0.1, in its own process group (``stop`` ends it); its output goes to ``log``."""
    env = {k: v for k, v in os.environ.items() if k not in ("POND", "POND_CONFIG")}
    env["DAGSTER_HOME"] = str(home)
    port = free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return server, port
