"""Request ids, logs, the health check and CORS."""

import json
import logging
import subprocess
import sys

import pytest
from django.db import OperationalError

from accounts.models import APIKey

pytestmark = pytest.mark.django_db


def test_request_id_generated(patch, raw_key):
    response = patch({}, raw_key)
    assert len(response["X-Request-ID"]) == 32


def test_request_id_kept(patch, raw_key):
    response = patch({}, raw_key, HTTP_X_REQUEST_ID="trace-42.abc")
    assert response["X-Request-ID"] == "trace-42.abc"


@pytest.mark.parametrize(
    "incoming", ["", "x" * 129, "two words", "bad\u00e9", "a\nb", "<script>"]
)
def test_insane_request_id_replaced(patch, raw_key, incoming):
    response = patch({}, raw_key, HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


def test_request_id_on_errors(client):
    assert client.get("/api/nothing")["X-Request-ID"]
    assert client.get("/healthz")["X-Request-ID"]


def test_patch_logged(patch, raw_key, account, caplog):
    caplog.set_level(logging.INFO, logger="sandboxes.views")
    response = patch({"snapshotId": "s"}, raw_key, HTTP_X_REQUEST_ID="req-9")
    (record,) = [r for r in caplog.records if r.name == "sandboxes.views"]
    assert record.levelno == logging.INFO
    assert record.caller_account_id == str(account.pk)
    assert record.target_account_id == str(account.pk)
    assert record.key_prefix == APIKey.objects.get().prefix
    assert record.status == 200
    assert record.duration_ms >= 0
    assert record.request_id == "req-9"
    assert response["X-Request-ID"] == "req-9"


def test_rejected_patch_logged_with_status(patch, raw_key, caplog):
    caplog.set_level(logging.INFO, logger="sandboxes.views")
    patch({"snapshotId": ""}, raw_key)
    (record,) = [r for r in caplog.records if r.name == "sandboxes.views"]
    assert record.status == 400


def test_auth_failure_logged_as_warning(patch, caplog):
    caplog.set_level(logging.INFO)
    patch({}, "recoup_sk_" + "B" * 43, REMOTE_ADDR="192.0.2.5")
    (record,) = [r for r in caplog.records if r.name == "accounts.authentication"]
    assert record.levelno == logging.WARNING
    assert record.client_address == "192.0.2.5"
    assert "unknown_key" in record.getMessage()


def test_logs_never_contain_keys_or_digests(patch, raw_key, make_account, caplog):
    caplog.set_level(logging.DEBUG)
    stranger = make_account("Stranger")
    patch({"snapshotId": "s"}, raw_key)
    patch({"snapshotId": ""}, raw_key)
    patch({"account_id": str(stranger.pk)}, raw_key)
    patch({}, HTTP_AUTHORIZATION=f"Bearer {raw_key}x")
    patch({}, raw_key, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    digest = APIKey.objects.get().digest
    text = caplog.text + "".join(
        json.dumps(r.__dict__, default=str) for r in caplog.records
    )
    assert raw_key not in text
    assert raw_key[len("recoup_sk_") + 8 :] not in text
    assert digest not in text


def test_json_log_format():
    script = (
        "import logging, django; django.setup(); "
        "logging.getLogger('sandboxes.views').info('hello %s', 'world', "
        "extra={'status': 200})"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={
            "DJANGO_SETTINGS_MODULE": "recoup.settings",
            "LOG_FORMAT": "json",
            "PATH": "",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["logger"] == "sandboxes.views"
    assert line["status"] == 200
    assert line["request_id"] == "-"


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_database_down(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def fail(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", fail)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "database is unavailable" in response.json()["error"]


def test_api_database_down(patch, raw_key, monkeypatch):
    from accounts import keys

    def fail(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(keys, "_find_key", fail)
    response = patch({}, raw_key)
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert "database is unavailable" in response.json()["error"]


def test_cors_preflight_allowed_origin(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client.options(
        "/api/sandboxes",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = response["Access-Control-Allow-Headers"].lower()
    assert "x-api-key" in allowed
    assert "authorization" in allowed
    assert "cookie" not in allowed


def test_cors_other_origin_not_allowed(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client.options(
        "/api/sandboxes",
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
    )
    assert "Access-Control-Allow-Origin" not in response


def test_cors_none_by_default(patch, raw_key):
    response = patch({}, raw_key, HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_disallowed_host_logged_as_one_warning(client):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("django.security.DisallowedHost")
    logger.addHandler(handler)
    try:
        response = client.get("/api/sandboxes", HTTP_HOST="evil.example")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 400
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert "evil.example" in records[0].getMessage()
