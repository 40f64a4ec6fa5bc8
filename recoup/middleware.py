"""Request ids: every request gets one, every log line carries it, and the
response returns it in ``X-Request-ID``."""

import contextvars
import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain enough to log as is.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_request_id = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    """Return the id of the request being handled, or "" outside one."""
    return _request_id.get()


class RequestIDMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = (
            incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        )
        request.request_id = request_id
        # Not reset on the way out: Django logs a failed request's response
        # after the middleware returns, and that line needs the id too. The
        # next request in this thread sets its own.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response
