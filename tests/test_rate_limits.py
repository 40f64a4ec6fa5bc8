import logging
import os
import socket
import threading

import pytest
import redis
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from accounts.throttling import (
    APIKeyRateThrottle,
    AuthFailureLimiter,
    _CacheFailureLog,
    cache_failures,
)

from .conftest import free_port

pytestmark = pytest.mark.django_db

BAD_KEY = "recoup_sk_" + "A" * 43
REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_available():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["locmem", "redis"])
def limiter_cache(request, settings):
    """Run each test against local memory and against the real Redis."""
    if request.param == "redis":
        if not _redis_available():
            if os.environ.get("CI"):
                pytest.fail(f"Redis is not reachable at {REDIS_URL}.")
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": "recoup-tests",
            }
        }
    cache.clear()
    yield request.param
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """A clock that the tests move instead of sleeping."""

    class Clock:
        # The start of a one-minute window: 1_000_020 is a multiple of 60.
        now = 1_000_020.0

        def __call__(self):
            return self.now

    fake = Clock()
    monkeypatch.setattr(APIKeyRateThrottle, "timer", fake)
    monkeypatch.setattr(AuthFailureLimiter, "timer", fake)
    return fake


@pytest.fixture
def rates(settings):
    def set_rates(api="3/minute", auth_failures="2/minute"):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"api_key": api, "auth_failure": auth_failures},
        }

    return set_rates


def test_key_rate_limit(limiter_cache, clock, rates, patch, raw_key):
    rates(api="3/minute")
    for _ in range(3):
        assert patch({}, raw_key).status_code == 200
    response = patch({"snapshotId": "s"}, raw_key)
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) == 60
    assert "error" in response.json()


def test_key_rate_limit_window_passes(limiter_cache, clock, rates, patch, raw_key):
    rates(api="1/minute")
    assert patch({}, raw_key).status_code == 200
    assert patch({}, raw_key).status_code == 429
    clock.now += 61
    assert patch({}, raw_key).status_code == 200


def test_key_rate_limit_per_key(
    limiter_cache, clock, rates, patch, raw_key, make_key, account
):
    rates(api="1/minute")
    assert patch({}, raw_key).status_code == 200
    assert patch({}, raw_key).status_code == 429
    assert patch({}, make_key(account)).status_code == 200


def test_throttled_write_changes_nothing(limiter_cache, clock, rates, patch, raw_key):
    from sandboxes.models import AccountSnapshot

    rates(api="1/minute")
    patch({}, raw_key)
    assert patch({"snapshotId": "s"}, raw_key).status_code == 429
    assert not AccountSnapshot.objects.exists()


def test_auth_failures_limited_per_address(limiter_cache, clock, rates, patch, raw_key):
    rates(auth_failures="2/minute")
    for _ in range(2):
        assert patch({}, BAD_KEY, REMOTE_ADDR="198.51.100.1").status_code == 401
    response = patch({}, BAD_KEY, REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) == 60
    assert "failed authentication" in response.json()["error"]
    # Once over the limit, the address is refused even with a valid key.
    assert patch({}, raw_key, REMOTE_ADDR="198.51.100.1").status_code == 429
    # Another address is not affected.
    assert patch({}, raw_key, REMOTE_ADDR="198.51.100.2").status_code == 200


def test_auth_failure_limit_expires(limiter_cache, clock, rates, patch, raw_key):
    rates(auth_failures="1/minute")
    patch({}, BAD_KEY, REMOTE_ADDR="198.51.100.1")
    assert patch({}, raw_key, REMOTE_ADDR="198.51.100.1").status_code == 429
    clock.now += 30
    response = patch({}, raw_key, REMOTE_ADDR="198.51.100.1")
    assert int(response["Retry-After"]) == 30
    clock.now += 31
    assert patch({}, raw_key, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_missing_key_counts_as_failure(limiter_cache, clock, rates, patch):
    rates(auth_failures="1/minute")
    assert patch({}, REMOTE_ADDR="198.51.100.1").status_code == 401
    assert patch({}, REMOTE_ADDR="198.51.100.1").status_code == 429


def test_successes_do_not_count_as_failures(
    limiter_cache, clock, rates, patch, raw_key
):
    rates(api="100/minute", auth_failures="1/minute")
    for _ in range(5):
        assert patch({}, raw_key, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_forwarded_address_behind_proxy(limiter_cache, clock, rates, settings, patch):
    rates(auth_failures="1/minute")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    patch({}, BAD_KEY, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy)
    assert (
        patch({}, BAD_KEY, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy).status_code
        == 429
    )
    assert (
        patch({}, BAD_KEY, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy).status_code
        == 401
    )


def test_empty_rate_disables_limit(limiter_cache, clock, rates, patch, raw_key):
    rates(api=None, auth_failures=None)
    for _ in range(5):
        assert patch({}, BAD_KEY).status_code == 401
    for _ in range(5):
        assert patch({}, raw_key).status_code == 200


def test_forwarded_for_ignored_without_proxy(limiter_cache, clock, rates, patch):
    rates(auth_failures="2/minute")
    for n in range(2):
        patch({}, BAD_KEY, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response = patch({}, BAD_KEY, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code == 429, response.content


def test_forwarded_for_cannot_lock_out_another_address(
    limiter_cache, clock, rates, patch, raw_key
):
    rates(auth_failures="2/minute")
    for _ in range(5):
        patch(
            {}, BAD_KEY, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="198.51.100.9"
        )
    assert patch({}, raw_key, REMOTE_ADDR="198.51.100.9").status_code == 200


def test_limit_holds_under_concurrency(limiter_cache, clock, rates):
    import threading

    from django.test import RequestFactory

    rates(auth_failures="5/minute")
    factory = RequestFactory()
    barrier = threading.Barrier(20)
    throttled = []

    def attempt():
        request = factory.patch("/api/sandboxes", REMOTE_ADDR="198.51.100.3")
        limiter = AuthFailureLimiter()
        # All 20 pass the check before any of them has failed.
        limiter.check(request)
        barrier.wait(timeout=10)
        try:
            limiter.record_failure(request)
        except Throttled:
            throttled.append(True)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Every concurrent failure was counted: none was lost to a race.
    assert AuthFailureLimiter().count("198.51.100.3") == 20
    # Only the first 5 failures got their authentication error.
    assert len(throttled) == 15
    with pytest.raises(Throttled):
        AuthFailureLimiter().check(factory.patch("/api", REMOTE_ADDR="198.51.100.3"))


@pytest.fixture
def failing_cache(settings, request):
    """Point the limits at a Redis that refuses connections ("closed") or
    accepts them and never replies ("hung"), with a short socket timeout."""
    listener = None
    if request.param == "hung":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
    else:
        port = free_port()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    cache_failures.logged_at = None
    cache_failures.unlogged = 0
    yield request.param
    if listener is not None:
        listener.close()


@pytest.mark.parametrize("failing_cache", ["closed", "hung"], indirect=True)
def test_failed_cache_lets_requests_through(
    failing_cache, rates, patch, raw_key, caplog
):
    from sandboxes.models import AccountSnapshot

    rates(api="1/minute", auth_failures="1/minute")
    with caplog.at_level(logging.ERROR, logger="accounts.throttling"):
        for number in range(3):
            response = patch({"snapshotId": f"snap_{number}"}, raw_key)
            assert response.status_code == 200, response.content
        assert patch({}, BAD_KEY).status_code == 401
        assert patch({}, BAD_KEY).status_code == 401
    assert AccountSnapshot.objects.get().snapshot_id == "snap_2"
    # One line for the first failure; the rest of the minute's are counted.
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Rate limits are not enforced" in errors[0].getMessage()
    assert raw_key not in caplog.text


def test_cache_failure_log_reports_count(caplog):
    failures = _CacheFailureLog(interval=60)
    error = redis.ConnectionError("Connection refused")
    with caplog.at_level(logging.ERROR, logger="accounts.throttling"):
        for _ in range(5):
            failures.record("api_key", error)
        failures.logged_at -= 61
        failures.record("api_key", error)
    assert len(caplog.records) == 2
    assert caplog.records[0].cache_failures == 1
    assert caplog.records[1].cache_failures == 5


def test_auth_failure_limit_message(limiter_cache, clock, rates, patch):
    rates(auth_failures="1/minute")
    patch({}, BAD_KEY, REMOTE_ADDR="198.51.100.1")
    clock.now += 25
    response = patch({}, BAD_KEY, REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 429
    assert response.json()["error"] == (
        "Too many failed authentication attempts from this address. Check the "
        "API key. Retry in 35 seconds."
    )


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("198.51.100.7:4711", "198.51.100.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("[::ffff:198.51.100.7]:4711", "198.51.100.7"),
        ("fe80::7%eth0", "fe80::7"),
        ("[fe80::7%" + "x" * 300 + "]:4711", "fe80::7"),
        # Anything else is not an address: the peer's address counts.
        ("198.51.100.7:", "10.0.0.1"),
        ("198.51.100.7:http", "10.0.0.1"),
        ("[2001:db8::7", "10.0.0.1"),
        ("[2001:db8::7]4711", "10.0.0.1"),
        ("198.051.100.007", "10.0.0.1"),
        ("unknown", "10.0.0.1"),
    ],
)
def test_forwarded_address_forms(settings, forwarded, expected):
    from django.test import RequestFactory

    from recoup.clients import client_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    request = RequestFactory().patch(
        "/api/sandboxes", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded
    )
    assert client_address(request) == expected


def test_auth_failures_counted_per_ipv6_network(limiter_cache, clock, rates, patch):
    rates(auth_failures="2/minute")
    for address in ("2001:db8:1:1::1", "2001:db8:1:1::2"):
        assert patch({}, BAD_KEY, REMOTE_ADDR=address).status_code == 401
    # Another address of the same /64 is over the limit too.
    assert patch({}, BAD_KEY, REMOTE_ADDR="2001:db8:1:1:ffff::3").status_code == 429
    # Another /64 is not.
    assert patch({}, BAD_KEY, REMOTE_ADDR="2001:db8:1:2::1").status_code == 401


class _GarbageRedis(threading.Thread):
    """A server that replies ``reply`` to every Redis command."""

    def __init__(self, reply: bytes):
        super().__init__(daemon=True)
        self.reply = reply
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]

    def run(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve, args=(connection,), daemon=True
            ).start()

    def _serve(self, connection):
        with connection:
            try:
                while connection.recv(65536):
                    connection.sendall(self.reply)
            except OSError:
                return


# A cache that returns well-formed counts is indistinguishable from a working
# one, so the cases are replies that are not counts.
@pytest.mark.parametrize("reply", [b"$4\r\nabcd\r\n", b"+OK\r\n", b"-ERR no\r\n"])
def test_garbage_cache_replies_let_requests_through(
    settings, rates, patch, raw_key, reply
):
    server = _GarbageRedis(reply)
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    rates(api="1/minute", auth_failures="1/minute")
    try:
        for _ in range(2):
            response = patch({"snapshotId": "s"}, raw_key)
            assert response.status_code == 200, response.content
        assert patch({}, BAD_KEY).status_code == 401
    finally:
        server.listener.close()
