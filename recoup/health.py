import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    """Return 200 when the database answers a query, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.error(
            "Health check failed: database unavailable (%s)", type(error).__name__
        )
        return JsonResponse(
            {"error": "The database is unavailable. Retry in a few seconds."},
            status=503,
        )
    return JsonResponse({"status": "ok"})
