from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from . import health, views

admin.site.site_header = "Recoup administration"
admin.site.site_title = "Recoup admin"
# The service has no public site for the admin's "View site" link.
admin.site.site_url = None

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/", include("sandboxes.urls")),
    # Any other path under /api/ is a JSON 404, even with DEBUG on.
    re_path(r"^api/", views.api_not_found),
]

handler400 = "recoup.views.bad_request"
handler404 = "recoup.views.page_not_found"
handler500 = "recoup.views.server_error"
