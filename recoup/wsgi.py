"""WSGI entry point, as served by gunicorn: ``gunicorn recoup.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recoup.settings")

application = get_wsgi_application()

# Import the URLconf, and with it every view, now instead of on the first
# request: an error in it stops the server at start-up, and gunicorn's
# workers, forked from the preloaded application, start with it loaded.
get_resolver().url_patterns  # noqa: B018
