"""``pond ui``: ``dagster dev`` (the webserver and the daemon) on the project's workspace
and Dagster instance, until Ctrl-C or SIGTERM.

``dagster dev`` runs in a process group of its own, so the terminal's Ctrl-C reaches only
``pond``, which then asks it to stop through its shutdown pipe: it stops the webserver,
the daemon and the code servers, then exits. Should that take too long (or a second
interrupt come), the whole group is killed, so nothing is left running either way.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pond_pipeline.errors import ConflictError
from pond_pipeline.orchestration.instance import dagster_home, workspace_file

STOP_SECONDS = 90
"""How long ``dagster dev`` may take to stop (it gives each child up to 60 s)."""


def serve_ui(
    config: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 3000,
    pond_uri: str | None = None,
    on_start: Callable[[str, Path, Path], None] | None = None,
) -> int:
    """Run ``dagster dev`` for the ``pond.yaml`` at ``config`` until it exits (its exit
    code) or is interrupted (0 once everything stopped, 1 if it had to be killed).
    ``on_start(url, home, workspace)`` is called once it is started."""
    _check_free(host, port)  # the webserver would wait forever on a busy port
    folder = config.parent
    home = dagster_home(folder)
    workspace = workspace_file(folder, home)
    env = dict(os.environ, DAGSTER_HOME=str(home), POND_CONFIG=str(config))
    if pond_uri:
        env["POND"] = pond_uri
    read_fd, write_fd = os.pipe()
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "--workspace",
        str(workspace),
        "--host",
        host,
        "--port",
        str(port),
        "--shutdown-pipe",
        str(read_fd),
    ]
    # handlers (not SIG_IGN, which a child would inherit) for both: a `pond ui &` started
    # by a non-interactive shell ignores SIGINT, and dagster dev stops itself with SIGINT
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        process = subprocess.Popen(
            command, cwd=folder, env=env, pass_fds=[read_fd], start_new_session=True
        )
        os.close(read_fd)
        if on_start:
            on_start(f"http://{host}:{port}", home, workspace)
        try:
            return process.wait()
        except KeyboardInterrupt:
            pass
        return _stop(process, write_fd)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        with contextlib.suppress(OSError):
            os.close(write_fd)


def _stop(process: subprocess.Popen[bytes], write_fd: int) -> int:
    """Ask ``dagster dev`` to shut down; kill its process group if it takes too long or
    a second interrupt comes. 0: everything stopped by itself."""
    with contextlib.suppress(OSError):  # it already exited: nothing reads the pipe
        os.write(write_fd, b"SHUTDOWN\n")
    clean = True
    try:
        process.wait(timeout=STOP_SECONDS)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        clean = False
    # whatever is left in its group (a code server it did not wait for)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()
    return 0 if clean else 1


def _check_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConflictError(
                f"cannot serve there: {exc.strerror or exc}",
                subject=f"{host}:{port}",
                hint="stop what listens there, or pass --port N",
            ) from exc


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
