"""Rate limits: requests per API key, and failed authentications per client
address. Rates take DRF's form, ``100/minute``; counters live in the default
cache, which must be shared by all instances (Redis) in production."""

from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRate:
    """Read the rate when a throttle is made, not when its class is defined,
    so a change of settings applies at once."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class APIKeyRateThrottle(_SettingsRate, SimpleRateThrottle):
    """Limit each API key to ``API_RATE_LIMIT`` requests."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}

    def throttle_failure(self):
        return False


class AuthFailureLimiter(_SettingsRate, SimpleRateThrottle):
    """Count failed authentications per client address; once an address has
    ``AUTH_FAILURE_RATE_LIMIT`` failures in the window, reject its requests
    with 429 until the oldest failure leaves the window.

    DRF's throttles run after authentication, and only for requests that pass
    it, so the authentication class calls this limiter itself.
    """

    scope = "auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }

    def _load(self, request):
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()

    def check(self, request) -> None:
        """Raise Throttled if the client address is over its limit."""
        if self.rate is None:
            return
        self._load(request)
        if len(self.history) >= self.num_requests:
            raise exceptions.Throttled(
                wait=self.wait(),
                detail="Too many failed authentication attempts from this "
                "address. Wait before retrying, and check the API key.",
            )

    def record_failure(self, request) -> None:
        if self.rate is None:
            return
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
