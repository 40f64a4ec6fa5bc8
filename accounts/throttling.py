"""Rate limits: requests per API key, and failed authentications per client
address.

Rates take DRF's form, ``100/minute``. Each limit counts hits in fixed windows
of that length with the cache's atomic add and incr, so concurrent requests
cannot overrun it. The counters live in the default cache, which must be
shared by all workers and instances (Redis) in production.
"""

from django.core.cache import cache as default_cache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from recoup.clients import client_address


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

    def count(self, ident) -> int:
        return self.cache.get(self._key(ident), 0)

    def hit(self, ident) -> int:
        """Count one hit and return the window's count, including it."""
        key = self._key(ident)
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
        if self.enabled and self.count(client_address(request)) >= self.limit:
            raise exceptions.Throttled(
                wait=self.wait(),
                detail="Too many failed authentication attempts from this "
                "address. Wait before retrying, and check the API key.",
            )

    def record_failure(self, request) -> None:
        if self.enabled:
            self.hit(client_address(request))
