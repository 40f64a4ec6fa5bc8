"""Rate limits: requests per API key, and failed authentications per client
address.

Rates take DRF's form, ``100/minute``. Each limit counts hits in fixed windows
of that length with the cache's atomic add and incr, so concurrent requests
cannot overrun it. The counters live in the default cache, which must be
shared by all workers and instances (Redis) in production.

When the cache fails, the limits let requests through and log an error, at
most once a minute per worker process. Keys are still checked against the
database, and an unreachable cache must not take the whole API down with it.

NOTE: redis-py's socket timeout bounds each read, not a whole command, so a
Redis that trickles its reply byte by byte can still hold a request until
gunicorn's worker timeout.
"""

import ipaddress
import logging
import threading
import time

from django.core.cache import cache as default_cache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from recoup.clients import client_address

logger = logging.getLogger(__name__)

CACHE_FAILURE_LOG_INTERVAL = 60  # seconds


class _CacheFailureLog:
    """Log cache failures at most once per interval, with the number of
    failures since the last line."""

    def __init__(self, interval: float):
        self.interval = interval
        self.lock = threading.Lock()
        self.logged_at = None
        self.unlogged = 0

    def record(self, scope: str, error: Exception) -> None:
        now = time.monotonic()
        with self.lock:
            self.unlogged += 1
            if self.logged_at is not None and now - self.logged_at < self.interval:
                return
            failures, self.unlogged, self.logged_at = self.unlogged, 0, now
        logger.error(
            "Rate limits are not enforced: the cache failed (%s: %s), %s "
            "time(s) since this process last logged it. Check CACHE_URL and "
            "the Redis server.",
            type(error).__name__,
            error,
            failures,
            extra={"limit_scope": scope, "cache_failures": failures},
        )


cache_failures = _CacheFailureLog(CACHE_FAILURE_LOG_INTERVAL)


def _as_count(value) -> int:
    """Return ``value`` if the cache returned a count, else raise TypeError."""
    if type(value) is not int:
        raise TypeError(f"The cache returned {type(value).__name__}, not a count.")
    return value


class _WindowCounter(BaseThrottle):
    """A counter of hits per fixed window, for one rate in the settings."""

    scope = ""
    cache = default_cache
    timer = SimpleRateThrottle.timer
    parse_rate = SimpleRateThrottle.parse_rate

    def __init__(self):
        # The rate is read when a throttle is made, not when its class is
        # defined, so that a change of settings applies at once.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.limit, self.duration = self.parse_rate(rate)
        self.now = self.timer()

    @property
    def enabled(self) -> bool:
        return self.limit is not None

    def _key(self, ident) -> str:
        window = int(self.now // self.duration)
        return f"throttle:{self.scope}:{ident}:{window}"

    # Any error of the cache lets the request through: besides connection
    # errors and timeouts, a cache that replies garbage makes the backend's
    # decoding raise (UnpicklingError, ValueError, AttributeError).
    def count(self, ident) -> int:
        """Return the window's count, or 0 if the cache failed."""
        try:
            return _as_count(self.cache.get(self._key(ident), 0))
        except Exception as error:
            cache_failures.record(self.scope, error)
            return 0

    def hit(self, ident) -> int:
        """Count one hit and return the window's count, including it, or 0
        if the cache failed."""
        try:
            return _as_count(self._hit(self._key(ident)))
        except Exception as error:
            cache_failures.record(self.scope, error)
            return 0

    def _hit(self, key) -> int:
        # The key outlives its window by a second, so it never expires
        # between add() and incr().
        if self.cache.add(key, 1, timeout=self.duration + 1):
            return 1
        try:
            return self.cache.incr(key)
        except ValueError:
            self.cache.add(key, 1, timeout=self.duration + 1)
            return 1

    def wait(self):
        """Return the seconds until the current window ends."""
        return self.duration - (self.now % self.duration)


class APIKeyRateThrottle(_WindowCounter):
    """Limit each API key to ``API_RATE_LIMIT`` requests."""

    scope = "api_key"

    def allow_request(self, request, view):
        if not self.enabled or request.auth is None:
            return True
        return self.hit(request.auth.pk) <= self.limit


class AuthFailureLimiter(_WindowCounter):
    """Count failed authentications per client address; once an address has
    ``AUTH_FAILURE_RATE_LIMIT`` failures in the window, reject its requests
    with 429 until the window ends.

    DRF's throttles run after authentication, and only for requests that pass
    it, so the authentication class calls this limiter itself.
    """

    scope = "auth_failure"

    def check(self, request) -> None:
        """Raise Throttled if the client address is over its limit."""
        if self.enabled and self.count(self._ident(request)) >= self.limit:
            self._throttle()

    def record_failure(self, request) -> None:
        """Count a failed authentication, and raise Throttled if it went over
        the limit.

        Concurrent requests from one address can all pass ``check`` before
        any of them fails, so the count taken here decides: the address gets
        at most ``limit`` authentication errors in a window.
        """
        if self.enabled and self.hit(self._ident(request)) > self.limit:
            self._throttle()

    @staticmethod
    def _ident(request) -> str:
        """Return the client's IPv4 address, or the /64 network of its IPv6
        address, because one IPv6 client is usually assigned a whole /64."""
        address = client_address(request)
        if ":" not in address:
            return address
        try:
            return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
        except ValueError:
            return address

    def _throttle(self):
        raise _AuthFailuresThrottled(wait=self.wait())


class _AuthFailuresThrottled(exceptions.Throttled):
    default_detail = (
        "Too many failed authentication attempts from this address. Check the API key."
    )
    extra_detail_singular = "Retry in {wait} second."
    extra_detail_plural = "Retry in {wait} seconds."
