from django.urls import path

from .views import SandboxSnapshotView

urlpatterns = [
    path("sandboxes", SandboxSnapshotView.as_view(), name="sandboxes"),
]
