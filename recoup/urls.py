from django.contrib import admin
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("sandboxes.urls")),
    # Any other path under /api/ is a JSON 404, even with DEBUG on.
    re_path(r"^api/", views.api_not_found),
]

handler400 = "recoup.views.bad_request"
handler404 = "recoup.views.page_not_found"
handler500 = "recoup.views.server_error"
