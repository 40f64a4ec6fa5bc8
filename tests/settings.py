"""Test settings: the service's own settings, with fixed test secrets."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("API_KEY_HASH_SECRET", "test-api-key-hash-secret")

from recoup.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
