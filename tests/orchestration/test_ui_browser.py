"""A real browser on ``pond ui``: Debian's chromium (headless), driven by playwright,
shows every asset of the example on the asset graph page and the run of ``pond
materialize`` on the runs page; then Ctrl-C (SIGINT) stops ``pond ui`` and everything it
started."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from pond_pipeline.cli.main import cli

from .conftest import ENTRIES, PATHS
from .servers import free_port, is_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_SECONDS = 120
PAGE_SECONDS = 60
STOP_SECONDS = 100
POND = str(Path(sys.executable).parent / "pond")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(scripts/test.sh installs it with apt-get)",
    ),
]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def shown_as(name: str, text: str) -> bool:
    """The graph shortens a long name in its middle: ``daily_summ…_series``."""
    if text == name:
        return True
    head, ellipsis, tail = text.partition("…")
    return bool(ellipsis) and name.startswith(head) and name.endswith(tail)


def test_the_ui_shows_every_asset_and_the_run_of_pond_materialize(example, tmp_path):
    from playwright.sync_api import sync_playwright

    result = CliRunner().invoke(
        cli, ["materialize", "/sensor_logs", "/processed/sensor_series"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    log = CliRunner().invoke(cli, ["--pond", str(example.pond_path), "log", "--format", "json"])
    (run_id,) = {t["run_id"] for t in json.loads(log.stdout) if t.get("run_id")}

    port = free_port()
    output = (tmp_path / "ui.log").open("wb")
    ui = subprocess.Popen(
        [POND, "ui", "--port", str(port)],
        cwd=example.folder,
        env={k: v for k, v in os.environ.items() if k not in ("POND", "DAGSTER_HOME")},
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dev: list[int] = []  # dagster dev: its own process group
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_up(port):
            assert ui.poll() is None, f"pond ui exited ({ui.returncode})"
            assert time.monotonic() < deadline, "the UI did not start"
            time.sleep(0.5)
        dev = children(ui.pid)
        assert len(dev) == 1, dev

        keys = [p.strip("/").replace(".", "_").split("/") for p in (*PATHS, *ENTRIES)]
        groups = sorted({key[0] for key in keys})
        names = [key[-1] for key in keys]
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                # the global asset graph, every group opened (they start collapsed)
                expanded = ",".join(f"global@global:{g}" for g in groups)
                page.goto(f"{base}/asset-groups?{urllib.parse.urlencode({'expanded': expanded})}")
                deadline = time.monotonic() + PAGE_SECONDS
                while True:
                    texts = [
                        line.strip()
                        for text in page.locator("foreignObject > div").all_inner_texts()
                        for line in text.splitlines()
                        if line.strip()
                    ]
                    missing = [n for n in names if not any(shown_as(n, t) for t in texts)]
                    if not missing:
                        break
                    assert time.monotonic() < deadline, f"not on the graph: {missing}; {texts}"
                    page.wait_for_timeout(500)
                assert set(groups) <= set(texts)

                page.goto(f"{base}/runs")
                page.get_by_text(run_id[:8]).first.wait_for(timeout=PAGE_SECONDS * 1000)
                body = page.inner_text("body")
                assert "pond/cli: materialize" in body
                assert "processed / sensor_series" in body  # the run's target: its assets
                assert "Success" in body
            finally:
                browser.close()

        os.kill(ui.pid, signal.SIGINT)  # what Ctrl-C sends
        assert ui.wait(timeout=STOP_SECONDS) == 0
        deadline = time.monotonic() + 10
        while group_alive(dev[0]):  # the webserver, the daemon, the code servers
            assert time.monotonic() < deadline, "pond ui left processes running"
            time.sleep(0.2)
    finally:
        for pgid in [*dev, ui.pid]:
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
        ui.wait(timeout=15)
        output.close()
    assert "Dagster UI on http://127.0.0.1:" in (tmp_path / "ui.log").read_text()
