"""Settings for the Recoup sandbox-snapshot service.

Every value comes from the environment, read once here through django-environ.
The defaults suit local development; production sets DEBUG=false and must then
provide the secrets, or start-up fails.
"""

import uuid
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from recoup.logs import json_formatter

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    SECRET_KEY=(str, ""),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]"]),
    API_KEY_HASH_SECRET=(str, ""),
    SNAPSHOT_TTL_DAYS=(int, 7),
    PLATFORM_ORGANIZATION_ID=(str, ""),
    CACHE_URL=(str, "locmemcache://"),
    CACHE_TIMEOUT=(float, 0.25),
    API_RATE_LIMIT=(str, "600/minute"),
    AUTH_FAILURE_RATE_LIMIT=(str, "20/minute"),
    CORS_ALLOWED_ORIGINS=(list, []),
    NUM_PROXIES=(int, 0),
    LOG_FORMAT=(str, "text"),
    LOG_LEVEL=(str, "INFO"),
    DB_CONN_MAX_AGE=(int, 60),
    DB_CONNECT_TIMEOUT=(int, 5),
    SECURE_HSTS_SECONDS=(int, 31536000),
    SECURE_HSTS_INCLUDE_SUBDOMAINS=(bool, True),
    SECURE_HSTS_PRELOAD=(bool, True),
)

DEBUG = env("DEBUG")

# Development-only fallbacks. With DEBUG off each of these must be set.
_DEVELOPMENT_SECRETS = {
    "SECRET_KEY": "django-insecure-development-only-secret-key",
    "API_KEY_HASH_SECRET": "development-only-api-key-hash-secret",
}


def _secret(name):
    value = env(name)
    if value:
        return value
    if DEBUG:
        return _DEVELOPMENT_SECRETS[name]
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment, or set DEBUG=true "
        "for local development."
    )


SECRET_KEY = _secret("SECRET_KEY")
API_KEY_HASH_SECRET = _secret("API_KEY_HASH_SECRET")

if not DEBUG and "ALLOWED_HOSTS" not in env.ENVIRON:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. Set it to the service's host names, "
        "comma-separated, or set DEBUG=true for local development."
    )
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

SNAPSHOT_TTL_DAYS = env("SNAPSHOT_TTL_DAYS")
if SNAPSHOT_TTL_DAYS < 1:
    raise ImproperlyConfigured(
        f"SNAPSHOT_TTL_DAYS must be a whole number of days of at least 1, "
        f"not {SNAPSHOT_TTL_DAYS}."
    )

_platform_organization = env("PLATFORM_ORGANIZATION_ID")
try:
    PLATFORM_ORGANIZATION_ID = (
        uuid.UUID(_platform_organization) if _platform_organization else None
    )
except ValueError:
    raise ImproperlyConfigured(
        f"PLATFORM_ORGANIZATION_ID must be an account UUID, "
        f"not {_platform_organization!r}."
    ) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "sandboxes",
]

MIDDLEWARE = [
    "recoup.middleware.RequestIDMiddleware",
    "recoup.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "recoup.urls"
WSGI_APPLICATION = "recoup.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "recoup" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
# Persistent connections: each gunicorn sync worker handles one request at a
# time, so one kept-open connection per worker is all the pooling it can use.
# CONN_HEALTH_CHECKS replaces a connection that the database has dropped.
DATABASES["default"]["CONN_MAX_AGE"] = env("DB_CONN_MAX_AGE")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast with a 503 rather than hang while the database is unreachable.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env(
        "DB_CONNECT_TIMEOUT"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rate-limit counters. Local memory is per process: with several workers or
# instances each counts alone, so production uses Redis.
CACHES = {"default": env.cache_url_config(env("CACHE_URL"))}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis that is down or hung costs each request at most this long: the
    # rate limits then let the request through (accounts/throttling.py).
    # Options in CACHE_URL's query string take precedence.
    _redis_options = CACHES["default"].setdefault("OPTIONS", {})
    _redis_options.setdefault("socket_connect_timeout", env("CACHE_TIMEOUT"))
    _redis_options.setdefault("socket_timeout", env("CACHE_TIMEOUT"))

_VALIDATORS_MODULE = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS_MODULE}.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# TLS ends at the proxy or load balancer, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = True
    # Load balancers probe the health check over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env("SECURE_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = env("SECURE_HSTS_PRELOAD")

CORS_ALLOWED_ORIGINS = env("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_METHODS = ["PATCH", "OPTIONS"]
# Content-Type is needed as well: a JSON body is not a CORS-safelisted type.
CORS_ALLOW_HEADERS = ["x-api-key", "authorization", "content-type"]
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]

# The API reads at most this many bytes of a request body; a larger one gets 413.
API_MAX_BODY_BYTES = 64 * 1024
# Django refuses to read a larger body into memory (HttpRequest.body), which is
# how DRF reads it, so nothing past the API's limit is ever buffered.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.APIKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_RATE_LIMIT") or None,
        "auth_failure": env("AUTH_FAILURE_RATE_LIMIT") or None,
    },
    # 0 means no proxy: the client address is REMOTE_ADDR and X-Forwarded-For,
    # which the client writes, is ignored.
    "NUM_PROXIES": env("NUM_PROXIES"),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["recoup.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "recoup.exceptions.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Recoup API - Sandbox snapshots",
    "DESCRIPTION": (
        "API of the Recoup platform, an AI agent platform for the music "
        "industry: the snapshot that an account's new sandboxes start from."
    ),
    "VERSION": "1.0.0",
    "LICENSE": {"name": "MIT"},
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs pages are public, like the contract they follow.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api",
    # Name the PATCH body UpdateSnapshotRequest, as the public contract does.
    "COMPONENT_SPLIT_PATCH": False,
    # Swagger UI's default validatorUrl loads a badge image from
    # validator.swagger.io, sending it the schema URL.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOG_FORMAT = env("LOG_FORMAT")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "recoup.logs.RequestIDLogFilter"},
        "client_error": {"()": "recoup.logs.ClientErrorLogFilter"},
    },
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        },
        "json": json_formatter(
            "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
        ),
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL")},
    "loggers": {
        # Replaces Django's default handlers for its loggers, which would
        # print each line a second time while DEBUG is on.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Django's request logger repeats every 4xx; the API logs its own.
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"filters": ["client_error"]},
    },
}
