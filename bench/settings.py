"""Settings of the baseline server: the service's settings, with the
baseline view at ``/api/sandboxes`` in place of the service's."""

from recoup.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
