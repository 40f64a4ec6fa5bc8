from django.urls import re_path

from .views import SandboxSnapshotView

urlpatterns = [
    re_path(r"^sandboxes/?$", SandboxSnapshotView.as_view(), name="sandboxes"),
]
