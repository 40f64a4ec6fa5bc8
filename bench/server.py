"""Start and stop gunicorn on 127.0.0.1, and read its workers' memory."""

import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import GUNICORN, GUNICORN_CONFIG, PROJECT_ROOT


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class GunicornConfig:
    workers: int
    worker_class: str
    threads: int

    def arguments(self) -> list[str]:
        arguments = [
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
        ]
        if self.worker_class == "gthread":
            arguments += ["--threads", str(self.threads)]
        return arguments

    def describe(self) -> str:
        if self.worker_class == "gthread":
            return f"{self.workers} gthread workers x {self.threads} threads"
        return f"{self.workers} {self.worker_class} workers"


@dataclass
class Server:
    """A gunicorn master started by this benchmark, in its own process group."""

    process: subprocess.Popen
    port: int
    log_path: Path
    health_checks: int = 0
    worker_pids: list[int] = field(default_factory=list)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully with SIGTERM; kill the process group if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start(
    config: GunicornConfig,
    env: dict,
    log_path: Path,
    timeout: float = 60.0,
) -> Server:
    """Start gunicorn as production does (``gunicorn -c gunicorn.conf.py
    recoup.wsgi``) on a free port of 127.0.0.1, with the worker settings of
    ``config`` in place of the file's, and wait until every worker is up and
    GET /healthz returns 200.

    The settings module comes from ``DJANGO_SETTINGS_MODULE`` in ``env``.
    """
    port = free_port()
    log = log_path.open("ab")
    command = [
        str(GUNICORN),
        "--config",
        str(GUNICORN_CONFIG),
        "recoup.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(PROJECT_ROOT),
        *config.arguments(),
    ]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = Server(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with status {process.returncode} while starting. "
                f"See {log_path}."
            )
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(
                f"gunicorn did not return 200 for GET /healthz within "
                f"{timeout:.0f} s. "
                f"See {log_path}."
            )
        workers = worker_pids(process.pid)
        if len(workers) == config.workers and _healthy(server):
            server.worker_pids = workers
            return server
        time.sleep(0.1)


def _healthy(server: Server) -> bool:
    # /healthz is exempt from the HTTPS redirect, so plain HTTP gets a 200.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        server.health_checks += 1
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def worker_pids(master_pid: int) -> list[int]:
    """Return the pids of the master's child processes, its workers."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    except FileNotFoundError:
        return []
    return sorted(int(pid) for pid in children.split())


def resident_memory_kib(pid: int) -> int | None:
    """Return VmRSS of a process in KiB, or None if it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def count_worker_boots(log_path: Path) -> int:
    """Return how many workers gunicorn's log records as booted."""
    with log_path.open(errors="replace") as lines:
        return sum("Booting worker with pid" in line for line in lines)


def count_patch_requests(log_path: Path) -> tuple[int, int]:
    """Return how many PATCH /api/sandboxes requests gunicorn's access log
    records, and how many of them got a status other than 200.

    Reads the access_log_format of gunicorn.conf.py: the client, the quoted
    request line, then the status.
    """
    requests = not_ok = 0
    marker = '"PATCH /api/sandboxes HTTP/1.1" '
    with log_path.open(errors="replace") as lines:
        for line in lines:
            position = line.find(marker)
            if position < 0:
                continue
            requests += 1
            if not line[position + len(marker) :].startswith("200 "):
                not_ok += 1
    return requests, not_ok
