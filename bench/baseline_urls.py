from django.urls import path

from recoup import health

from .baseline import patch_snapshot

urlpatterns = [
    path("api/sandboxes", patch_snapshot),
    path("healthz", health.healthz),
]
