"""CPU time used during a run by processes that are not the benchmark's.

The machine may run other work while the benchmark runs, and on 2 cores that
shows in every figure. BackendCPU measures the benchmark database's own
PostgreSQL backends. A run's other load is the machine's busy CPU time less
the time of this process, its children (gunicorn and its workers, once
reaped, and wrk) and the PostgreSQL server. PostgreSQL's work for other
databases therefore counts as the benchmark's.
"""

import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    # cpu user nice system idle iowait irq softirq steal ...
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _process_seconds(stat: str, *, with_children: bool) -> float:
    # The command name may contain spaces, so split after its closing bracket.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    total = utime + stime + (cutime + cstime if with_children else 0)
    return total / _TICKS


def _stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def gunicorn_seconds(master_pid: int, worker_pids: list[int]) -> float:
    """Return the CPU time of a gunicorn master, the workers it has reaped
    (restarted after max_requests) and the live ``worker_pids``."""
    total = 0.0
    master = _stat(master_pid)
    if master is not None:
        total += _process_seconds(master, with_children=True)
    for pid in worker_pids:
        stat = _stat(pid)
        if stat is not None:
            total += _process_seconds(stat, with_children=False)
    return total


def postgres_seconds(postmaster_pid: int | None) -> float:
    """Return the CPU time of the postmaster, its live children and the
    children it has reaped; 0 when PostgreSQL runs elsewhere (None)."""
    total = 0.0
    if postmaster_pid is None:
        return total
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == postmaster_pid:
            total += _process_seconds(stat, with_children=True)
        elif parent == postmaster_pid:
            total += _process_seconds(stat, with_children=False)
    return total


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class CPUSample:
    wall: float
    busy: float
    own: float
    postgres: float


def sample(postmaster_pid: int | None) -> CPUSample:
    return CPUSample(
        wall=time.monotonic(),
        busy=_busy_seconds(),
        own=_own_seconds(),
        postgres=postgres_seconds(postmaster_pid),
    )


def other_cores(before: CPUSample, after: CPUSample) -> float:
    """Return the average number of cores that other processes kept busy
    between two samples. Call ``after`` once gunicorn has been reaped."""
    other = (
        (after.busy - before.busy)
        - (after.own - before.own)
        - (after.postgres - before.postgres)
    )
    return max(0.0, other) / (after.wall - before.wall)


class BackendCPU(threading.Thread):
    """CPU time of the PostgreSQL backends connected to the database
    ``name``, polled over a connection to ``admin_url``.

    A backend that exits takes its CPU time with it, so the thread reads the
    backends' times every ``interval`` seconds and keeps the last reading:
    a backend that exits loses at most one interval. Use as a context manager
    around the measured load; ``seconds`` is the total afterwards.
    """

    def __init__(self, admin_url: str, name: str, interval: float = 0.25):
        super().__init__(daemon=True)
        self.admin_url = admin_url
        self.name = name
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop_event = threading.Event()
        self._ready = threading.Event()

    def _poll(self, connection) -> None:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend'",
            [self.name],
        ).fetchall()
        for (pid,) in rows:
            stat = _stat(pid)
            if stat is None:
                continue
            seconds = _process_seconds(stat, with_children=False)
            self.first.setdefault(pid, seconds)
            self.last[pid] = seconds

    def run(self) -> None:
        # The admin connection adds nothing to the counters of ``name``.
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            self._poll(connection)
            self._ready.set()
            while not self._stop_event.wait(self.interval):
                self._poll(connection)
            self._poll(connection)

    def __enter__(self):
        self.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info):
        self._stop_event.set()
        self.join()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)
