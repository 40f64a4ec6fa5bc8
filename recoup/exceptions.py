"""Every error under /api/ is JSON: ``{"error": "..."}``, and for a validation
error also ``"fields": {name: [messages]}``."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from .parsers import PayloadTooLarge

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable. Retry in a few seconds."
    default_code = "service_unavailable"


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return "The request is invalid."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "The request is invalid."
    return str(detail)


def error_body(detail) -> dict:
    """Shape DRF's error detail as ``{"error": ..., "fields": ...}``."""
    body = {"error": _first_message(detail)}
    if isinstance(detail, dict):
        fields = {
            name: [str(message) for message in messages]
            for name, messages in detail.items()
            if name != NON_FIELD
        }
        if fields:
            body["fields"] = fields
    return body


def _with_guidance(exc, context):
    """Replace DRF's generic method and media-type messages with ones that
    name what to send instead."""
    request = context.get("request")
    view = context.get("view")
    if request is None:
        return exc
    if isinstance(exc, exceptions.MethodNotAllowed) and view is not None:
        allowed = [m for m in view.allowed_methods if m != "OPTIONS"]
        return exceptions.MethodNotAllowed(
            request.method,
            detail=f"{request.method} is not allowed on {request.path}. "
            f"Use {' or '.join(allowed)}.",
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        media_type = request.content_type or "none"
        return exceptions.UnsupportedMediaType(
            media_type,
            detail=f"Content-Type {media_type[:64]!r} is not supported. Send the "
            "body as JSON with 'Content-Type: application/json'.",
        )
    return exc


def json_exception_handler(exc, context):
    """DRF exception handler: JSON errors for every exception in a view.

    An unexpected exception is logged and returned as a JSON 500, and a
    lost database connection with a JSON 503, so no stack trace reaches a
    client even with DEBUG on.
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.error("Database unavailable: %s", exc.__class__.__name__)
        exc = ServiceUnavailable()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("No such resource. Check the path.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # DRF reads a JSON body through HttpRequest.body, which raises this
        # when the Content-Length or the body is over
        # DATA_UPLOAD_MAX_MEMORY_SIZE, before the parser's own check runs.
        exc = PayloadTooLarge()

    exc = _with_guidance(exc, context)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context["view"].__class__.__name__)
        return Response(
            {
                "error": "The server failed to handle the request. Retry, and report "
                "it if it persists."
            },
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = error_body(exc.detail)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = "5"
    _render_as_json(context.get("request"))
    return response


def _render_as_json(request) -> None:
    """Render the error as JSON even from a view that renders something else,
    such as the schema (YAML) and its documentation pages (HTML)."""
    if request is not None and not isinstance(
        getattr(request, "accepted_renderer", None), JSONRenderer
    ):
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
