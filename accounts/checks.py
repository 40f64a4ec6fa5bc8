from django.conf import settings
from django.core.checks import Warning, register

LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(deploy=True)
def check_shared_rate_limit_cache(app_configs, **kwargs):
    """Warn when rate-limit counters are not shared between processes."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in LOCAL_CACHES:
        return []
    return [
        Warning(
            f"The default cache is {backend.rsplit('.', 1)[-1]}, so each worker "
            "counts rate limits alone.",
            hint="Set CACHE_URL to a shared cache, such as redis://host:6379/0.",
            id="accounts.W001",
        )
    ]
