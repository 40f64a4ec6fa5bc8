import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@csrf_exempt
@require_safe
def healthz(request):
    """Return 200 when the database responds to a query, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.error(
            "Health check failed: database unavailable (%s)", type(error).__name__
        )
        response = JsonResponse(
            {"error": "The database is unavailable. Retry in a few seconds."},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok"})


class HealthCheckMiddleware:
    """Respond to ``/healthz`` before any other middleware runs.

    Load balancers often probe an instance by its IP address, which is not in
    ALLOWED_HOSTS, and over plain HTTP, and the probe must still get its response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/healthz":
            return healthz(request)
        return self.get_response(request)
