"""The OpenAPI description of ``PATCH /api/sandboxes``, kept beside the view
so that the schema and the code change together."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers

from .serializers import SnapshotSerializer, SnapshotUpdateSerializer


class SandboxErrorResponse(serializers.Serializer):
    error = serializers.CharField(help_text="Error message describing what went wrong")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For a validation error: the messages of each invalid field.",
    )


class UpdateSnapshotRequestSchema(OpenApiSerializerExtension):
    """Declare ``additionalProperties: false`` on UpdateSnapshotRequest,
    because the serializer rejects unknown fields with 400."""

    target_class = SnapshotUpdateSerializer

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        schema["additionalProperties"] = False
        return schema


class SnapshotAutoSchema(AutoSchema):
    """The schema of ``PATCH /api/sandboxes``, with two corrections to what
    drf-spectacular infers from the view."""

    def get_auth(self):
        # APIKeyAuthentication takes the key from either header, so each of
        # its two schemes gets a requirement object of its own, which means
        # either one. drf-spectacular names both in one object, which means
        # both at once. super() also adds the schemes to the components.
        return [
            {name: scopes}
            for requirement in super().get_auth()
            for name, scopes in requirement.items()
        ]

    def get_operation(self, *args, **kwargs):
        # drf-spectacular marks the body required only when the serializer
        # has a required field. Every field is optional, but the view rejects
        # a request without a body with 400.
        operation = super().get_operation(*args, **kwargs)
        if operation and "requestBody" in operation:
            operation["requestBody"]["required"] = True
        return operation


def _error(description):
    return OpenApiResponse(response=SandboxErrorResponse, description=description)


_update_snapshot_extension = extend_schema(
    operation_id="updateSnapshot",
    summary="Update Snapshot",
    description=(
        "Set a custom snapshot ID for an account. By default, updates the key "
        "owner's account. Pass account_id to target a specific account the API "
        "key has access to. This allows accounts to use a specific sandbox "
        "snapshot when creating new sandboxes, enabling reproducible "
        "environments with pre-configured tools, dependencies, and files."
    ),
    request=SnapshotUpdateSerializer,
    responses={
        200: OpenApiResponse(
            response=SnapshotSerializer, description="Snapshot ID updated successfully"
        ),
        400: _error(
            "Bad request - invalid snapshot ID, repository, account_id or JSON"
        ),
        401: _error("Unauthorized - invalid or missing API key"),
        403: _error(
            "Forbidden - account_id is not a member of the organization or account "
            "tried to use an account_id they don't have access to"
        ),
        404: _error(
            "Not found - account_id does not exist; returned to platform staff only, "
            "everyone else gets 403"
        ),
        411: _error(
            "Length required - the body was sent chunked, without Content-Length"
        ),
        413: _error("Payload too large - the body is over 64 KiB"),
        415: _error("Unsupported media type - the body is not application/json"),
        429: _error(
            "Too many requests - over the key's rate limit, or too many failed "
            "authentications from the address; see Retry-After"
        ),
        503: _error(
            "Service unavailable - the database cannot be reached; retry after "
            "the seconds in Retry-After"
        ),
    },
    examples=[
        OpenApiExample(
            "Set a snapshot",
            value={
                "snapshotId": "snap_abc123def456",
                "github_repo": "https://github.com/org/repo",
            },
            request_only=True,
        )
    ],
)


def update_snapshot_schema(view_method):
    """Describe ``PATCH /api/sandboxes`` on the view method."""
    # extend_schema builds on the schema class already set in kwargs, the
    # way DRF's @action passes one.
    view_method.kwargs = {"schema": SnapshotAutoSchema}
    return _update_snapshot_extension(view_method)
