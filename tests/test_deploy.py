"""Production settings: start-up checks, HTTPS and Django's deploy checks."""

import gc
import http.client
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-of-more-than-fifty-characters-xyz-123456",
    "API_KEY_HASH_SECRET": "a-production-hash-secret",
    "ALLOWED_HOSTS": "api.example.com",
    "CACHE_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args, **env):
    base = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "recoup.settings",
    }
    if "DATABASE_URL" in os.environ:
        base["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "API_KEY_HASH_SECRET", "ALLOWED_HOSTS"]
)
def test_production_requires_setting(missing):
    env = {name: value for name, value in PRODUCTION.items() if name != missing}
    result = manage("check", **env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_production_starts_with_settings():
    result = manage("check", **PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_deploy_check_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues (0 silenced)" in result.stdout


def test_deploy_check_warns_on_local_cache():
    env = {**PRODUCTION, "CACHE_URL": "locmemcache://"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "accounts.W001" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SNAPSHOT_TTL_DAYS", "0"),
        ("PLATFORM_ORGANIZATION_ID", "not-a-uuid"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_invalid_setting_named(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    settings.ALLOWED_HOSTS = ["api.example.com"]


@pytest.mark.django_db
def test_plain_http_redirected(client, production):
    response = client.patch("/api/sandboxes", HTTP_HOST="api.example.com")
    assert response.status_code == 301
    assert response["Location"] == "https://api.example.com/api/sandboxes"


@pytest.mark.django_db
def test_forwarded_https_served(client, production):
    response = client.patch(
        "/api/sandboxes", HTTP_HOST="api.example.com", HTTP_X_FORWARDED_PROTO="https"
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_health_check_not_redirected(client, production):
    response = client.get("/healthz", HTTP_HOST="api.example.com")
    assert response.status_code == 200


def test_production_cookies_secure():
    script = (
        "from django.conf import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
        "settings.SECURE_SSL_REDIRECT)"
    )
    result = manage("shell", "--no-imports", "-c", script, **PRODUCTION)
    assert result.stdout.split() == ["True", "True", "True"], result.stderr


@pytest.mark.django_db
def test_health_check_answers_any_host(client, production):
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_unknown_host_json_under_api(client, production):
    response = client.patch(
        "/api/sandboxes", HTTP_HOST="evil.example.net", HTTP_X_FORWARDED_PROTO="https"
    )
    assert response.status_code == 400
    assert "Host header" in response.json()["error"]


def test_database_connection_settings_applied():
    script = (
        "from django.db import connection; s = connection.settings_dict; "
        "print(s['CONN_MAX_AGE'], s['CONN_HEALTH_CHECKS'], "
        "s['OPTIONS'].get('connect_timeout'))"
    )
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        DATABASE_URL="postgres://recoup@127.0.0.1:5432/recoup",
        DB_CONN_MAX_AGE="120",
        DB_CONNECT_TIMEOUT="4",
    )
    assert result.stdout.split() == ["120", "True", "4"], result.stderr


def test_gunicorn_preloads_and_freezes_the_application_before_forking():
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["preload_app"] is True
    assert gc.get_freeze_count() == 0
    try:
        config["when_ready"](None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _default_cache(**env):
    result = manage(
        "shell",
        "-c",
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.CACHES['default']))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    # The shell may print other lines first, such as its automatic imports.
    return json.loads(result.stdout.splitlines()[-1])


def test_redis_cache_gets_socket_timeouts():
    options = _default_cache(CACHE_URL="redis://127.0.0.1:6379/0")["OPTIONS"]
    assert options["socket_connect_timeout"] == 0.25
    assert options["socket_timeout"] == 0.25


def test_redis_cache_timeouts_from_environment_and_url():
    options = _default_cache(
        CACHE_URL="redis://127.0.0.1:6379/0?socket_timeout=2", CACHE_TIMEOUT="0.5"
    )["OPTIONS"]
    assert options["socket_connect_timeout"] == 0.5
    assert options["socket_timeout"] == 2


def test_gunicorn_json_log_lines(tmp_path):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "recoup.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_FORMAT": "json",
        "GUNICORN_ACCESS_LOG": "-",
    }
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "recoup.wsgi"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until_listening(port), "gunicorn did not start"
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("GET", "/healthz")
        assert client.getresponse().read() == b'{"status": "ok"}'
        client.request(
            "PATCH", "/api/sandboxes", b"{}", {"Content-Type": "application/json"}
        )
        assert client.getresponse().status == 401
        client.close()
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)

    lines = stdout.splitlines() + stderr.splitlines()
    records = [json.loads(line) for line in lines]
    loggers = {record["logger"] for record in records}
    assert {"gunicorn.error", "gunicorn.access", "accounts.authentication"} <= loggers
    assert any("Booting worker" in record["message"] for record in records)
    assert any("PATCH /api/sandboxes" in record["message"] for record in records)


def test_env_example_lists_every_setting():
    from recoup.settings import env

    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^(?:# )?([A-Z_]+)=", text, re.MULTILINE))
    assert set(env.scheme) - listed == set()
