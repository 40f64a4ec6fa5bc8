"""WSGI entry point, as served by gunicorn: ``gunicorn recoup.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recoup.settings")

application = get_wsgi_application()
