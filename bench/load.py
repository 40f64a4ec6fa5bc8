"""The load generator: wrk, with bench/patch.lua."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from .paths import WRK_SCRIPT

RESULT_MARKER = "BENCH_RESULT "


def ensure_wrk(install: bool) -> str:
    """Return the path of wrk, installing the Debian package if allowed.

    Raises SystemExit with the install command when wrk is missing and cannot
    be installed here.
    """
    found = shutil.which("wrk")
    if found:
        return found
    install_hint = (
        "Install it with 'apt-get install wrk' (Debian package wrk) and rerun."
    )
    if not install:
        raise SystemExit(f"wrk is not installed. {install_hint}")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            f"wrk is not installed, and this user cannot install it. {install_hint}"
        )
    print("wrk is not installed; installing the Debian package wrk.", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install_command = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install_command, env=env, check=False).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install_command, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            f"apt-get installed wrk, but it is not on PATH. {install_hint}"
        )
    return found


def run_wrk(
    wrk: str,
    port: int,
    key_file: Path,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    timeout: float = 5.0,
) -> dict:
    """Run wrk against PATCH /api/sandboxes on 127.0.0.1:``port`` and return
    the script's result: counts, and latencies in microseconds."""
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        f"--script={WRK_SCRIPT}",
        f"http://127.0.0.1:{port}/api/sandboxes",
        "--",
        str(key_file),
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=duration + 60
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            result["errors"] = (
                result["non200"]
                + result["connect_errors"]
                + result["read_errors"]
                + result["write_errors"]
                + result["timeouts"]
            )
            result["requests_per_second"] = result["requests"] / (
                result["duration_us"] / 1e6
            )
            return result
    raise RuntimeError(
        f"wrk exited with status {completed.returncode} and no result line.\n"
        f"stdout: {completed.stdout}\nstderr: {completed.stderr}"
    )
