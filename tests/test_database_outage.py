"""The database under a real gunicorn server: it goes away and comes back,
and workers forked from the preloaded application connect on their own.

The server reaches PostgreSQL through a TCP proxy that the test controls:
stopping the proxy cuts every connection and refuses new ones, as a database
that went down would, without touching the shared PostgreSQL server. The
proxy also counts the connections made through it.
"""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.keys import issue_key
from accounts.models import Account

from .conftest import free_port, requires_postgres, wait_until_listening

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
# A request must get a response within this many seconds while the database is down.
OUTAGE_RESPONSE_LIMIT = 10


class TCPProxy:
    """Forward a loopback port to the PostgreSQL server, until stopped."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.sockets = set()
        self.lock = threading.Lock()
        self.listener = None
        self.accepted = 0

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(
            target=self._accept, args=(self.listener,), daemon=True
        ).start()

    def stop(self):
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave the port accepting connections.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy():
    tcp_proxy = TCPProxy(int(connection.settings_dict["PORT"] or 5432))
    tcp_proxy.start()
    yield tcp_proxy
    tcp_proxy.stop()


def start_gunicorn(proxy, *options, log=subprocess.DEVNULL):
    """Start gunicorn with one worker, reaching the database through
    ``proxy``, and return the process and its port once it accepts
    connections."""
    database = connection.settings_dict
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "recoup.settings",
        "DEBUG": "false",
        "SECRET_KEY": "outage-test-secret-key-that-is-long-enough-for-django-checks",
        "API_KEY_HASH_SECRET": settings.API_KEY_HASH_SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@127.0.0.1:{proxy.port}/{database['NAME']}"
        ),
        "DB_CONN_MAX_AGE": "60",
        "DB_CONNECT_TIMEOUT": "3",
        "API_RATE_LIMIT": "",
        "AUTH_FAILURE_RATE_LIMIT": "",
        "GUNICORN_ACCESS_LOG": os.devnull,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "recoup.wsgi",
            *options,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    if not wait_until_listening(port):
        process.kill()
        pytest.fail("gunicorn did not start within 30 seconds")
    return process, port


def stop(process):
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def server(proxy):
    process, port = start_gunicorn(proxy)
    yield port
    stop(process)


def request(port, method, path, body=None, key=None):
    """Send one request over HTTP; return (status, JSON body, seconds taken)."""
    client = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=OUTAGE_RESPONSE_LIMIT
    )
    headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
    if key:
        headers["x-api-key"] = key
    started = time.monotonic()
    try:
        client.request(
            method, path, body=json.dumps(body) if body else None, headers=headers
        )
        response = client.getresponse()
        return response.status, json.loads(response.read()), time.monotonic() - started
    finally:
        client.close()


def test_database_outage_and_recovery(server, proxy):
    account = Account.objects.create(name="Artist")
    key = issue_key(account=account).raw_key
    status, body, _ = request(
        server, "PATCH", "/api/sandboxes", {"snapshotId": "s1"}, key
    )
    assert status == 200, body
    assert request(server, "GET", "/healthz")[0] == 200

    proxy.stop()
    for _ in range(3):
        status, body, seconds = request(
            server, "PATCH", "/api/sandboxes", {"snapshotId": "s2"}, key
        )
        assert status == 503, body
        assert "database is unavailable" in body["error"]
        assert seconds < OUTAGE_RESPONSE_LIMIT
    status, body, _ = request(server, "GET", "/healthz")
    assert status == 503
    assert "error" in body

    proxy.start()
    status, body, _ = request(
        server, "PATCH", "/api/sandboxes", {"snapshotId": "s3"}, key
    )
    assert status == 200, body
    assert body["snapshot_id"] == "s3"
    assert request(server, "GET", "/healthz")[0] == 200


def test_restarted_workers_of_the_preloaded_application_serve(proxy, tmp_path):
    account = Account.objects.create(name="Artist")
    key = issue_key(account=account).raw_key
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        process, port = start_gunicorn(
            proxy,
            "--config",
            "gunicorn.conf.py",
            "--max-requests",
            "3",
            "--max-requests-jitter",
            "0",
            log=log,
        )
    try:
        # The master loads the application before it forks the worker. A
        # database connection it opened would be shared by every worker.
        assert proxy.accepted == 0
        for number in range(10):
            status, body, _ = request(
                port, "PATCH", "/api/sandboxes", {"snapshotId": f"s{number}"}, key
            )
            assert status == 200, body
            assert body["snapshot_id"] == f"s{number}"
    finally:
        stop(process)
    # Three workers served three requests each and were replaced; the
    # fourth served the last one. Each connected once, for itself, and kept
    # its connection between requests.
    assert log_path.read_text().count("Booting worker with pid") == 4
    assert proxy.accepted == 4
