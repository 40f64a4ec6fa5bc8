"""JSON responses for requests that reach no API view."""

from django.core.exceptions import DisallowedHost
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


# The API uses no cookies, so a CSRF check would only turn this JSON 404 into
# Django's HTML 403 page for PATCH and POST.
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return JsonResponse(
        {
            "error": f"No API endpoint at {request.path}. "
            "The snapshot endpoint is PATCH /api/sandboxes."
        },
        status=404,
    )


def page_not_found(request, exception=None):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse(
            {
                "error": "The server failed to handle the request. Retry, and report "
                "it if it persists."
            },
            status=500,
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        if isinstance(exception, DisallowedHost):
            message = (
                "The Host header names a host this service does not serve. "
                "Send the request to the service's own host name."
            )
        else:
            message = "The request is malformed."
        return JsonResponse({"error": message}, status=400)
    return defaults.bad_request(request, exception)
