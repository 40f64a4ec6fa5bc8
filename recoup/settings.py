"""Settings for the Recoup sandbox-snapshot service.

Every value comes from the environment, read once here through django-environ.
The defaults suit local development; production sets DEBUG=false and must then
provide the secrets, or start-up fails.
"""

import uuid
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    SECRET_KEY=(str, ""),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]"]),
    API_KEY_HASH_SECRET=(str, ""),
    SNAPSHOT_TTL_DAYS=(int, 7),
    PLATFORM_ORGANIZATION_ID=(str, ""),
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
    "rest_framework",
    "accounts",
    "sandboxes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
        "DIRS": [],
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# The API reads at most this many bytes of a request body; a larger one gets 413.
API_MAX_BODY_BYTES = 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["recoup.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "recoup.exceptions.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
