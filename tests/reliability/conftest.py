"""Shared helpers of the reliability suite: expected payloads, the CLI's view of a pond.

The suite's writers run in child processes (``python -c SCRIPT``); what they wrote is
derived from a seed, so the test can recompute every payload without the child.
"""

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pond_pipeline.cli.main import cli


def payload(tag: str, size: int) -> bytes:
    """``size`` deterministic bytes for ``tag`` (sha256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{tag}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


PAYLOAD_SOURCE = "import hashlib\n\n" + inspect.getsource(payload)
"""Pasted into the child scripts, so parent and child agree on every payload."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pond_cli(root: Path | str, *args: str) -> Result:
    """``pond --pond ROOT ARGS``, in process; unexpected exceptions propagate."""
    return CliRunner().invoke(cli, ["--pond", str(root), *args], catch_exceptions=False)


def log_entries(root: Path | str) -> list[dict[str, Any]]:
    """``pond log --format json``: every transaction, newest first."""
    result = pond_cli(root, "log", "--format", "json")
    assert result.exit_code == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


def assert_clean_error(result: Result) -> str:
    """A failed command: exit 1, exactly one ``Error:`` line, no traceback; the line."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("Error: ")


@pytest.fixture
def clean_error() -> Callable[[Result], str]:
    return assert_clean_error


@pytest.fixture
def make_payload() -> Callable[[str, int], bytes]:
    """``make_payload(tag, size)``: the bytes a child wrote for ``tag``."""
    return payload


@pytest.fixture
def cli_on() -> Callable[..., Result]:
    """``cli_on(root, "verify")``: the CLI on any pond, in process."""
    return pond_cli


@pytest.fixture
def read_log() -> Callable[[Path | str], list[dict[str, Any]]]:
    return log_entries


@pytest.fixture
def payload_source() -> str:
    """Source text defining ``payload`` (same bytes as ``make_payload``), for child scripts."""
    return PAYLOAD_SOURCE
