import difflib
import json
import re
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from .models import SnapshotHistory
from .services import UNCHANGED
from .validators import (
    GITHUB_REPO_PATTERN,
    validate_github_repo,
    validate_snapshot_id,
)

_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


class _ValidatedText(serializers.Field):
    """A string checked by one of the shared validators; null clears it."""

    def __init__(self, validator, **kwargs):
        self.validator = validator
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        try:
            self.validator(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x21-\\x7e]+$",
        "description": "The snapshot ID to set for the account. This snapshot "
        "will be used as the base environment when creating new sandboxes. "
        "null clears it.",
        "example": "snap_abc123def456",
    }
)
class _SnapshotId(_ValidatedText):
    def __init__(self):
        super().__init__(validate_snapshot_id)


@extend_schema_field(
    {
        "type": "string",
        "format": "uri",
        "maxLength": 2048,
        "pattern": GITHUB_REPO_PATTERN,
        "description": "The GitHub repository URL to associate with the account's "
        "sandbox environment. Must be a valid http or https URL without "
        "credentials. null clears it.",
        "example": "https://github.com/org/repo",
    }
)
class _GithubRepo(_ValidatedText):
    def __init__(self):
        super().__init__(validate_github_repo)


@extend_schema_field(
    {
        "type": "string",
        "format": "uuid",
        "description": "UUID of the account to update the snapshot for. Only "
        "applicable when the authenticated account has access to multiple "
        "accounts via organization membership. If not provided, updates the "
        "snapshot for the API key's own account.",
    }
)
class _AccountId(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def validate_empty_values(self, data):
        if data is None:
            self._reject(data)
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _UUID.fullmatch(data):
            self._reject(data)
        return uuid.UUID(data)

    def _reject(self, data):
        raise serializers.ValidationError(
            f"account_id {_describe(data)} is not a UUID. Send an account's id, "
            "such as 550e8400-e29b-41d4-a716-446655440000, or leave it out to "
            "act for your own account."
        )

    def to_representation(self, value):
        return str(value)


MAX_UNKNOWN_FIELDS_REPORTED = 5


def _describe(value, limit: int = 48) -> str:
    """Quote a client's value for an error message, escaped and cut short.

    An array or object is named by its type only: quoting it would walk a
    nesting as deep as the client sent.
    """
    if isinstance(value, list | dict):
        return f"(a JSON {_json_type(value)})"
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-1]


@extend_schema_serializer(component_name="UpdateSnapshotRequest")
class SnapshotUpdateSerializer(serializers.Serializer):
    """The body of PATCH /api/sandboxes: every field optional, no others."""

    snapshotId = _SnapshotId()
    github_repo = _GithubRepo()
    account_id = _AccountId()

    # Common spellings of a field under another name.
    ALIASES = {
        "snapshot_id": "snapshotId",
        "snapshot": "snapshotId",
        "githubrepo": "github_repo",
        "repo": "github_repo",
        "accountid": "account_id",
    }

    def run_validation(self, data=serializers.empty):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        f"The request body is a JSON {_json_type(data)}. Send a "
                        'JSON object, such as {"snapshotId": "snap_abc123"}.'
                    ]
                }
            )
        unknown = [key for key in data if key not in self.fields]
        if unknown:
            # A body may hold thousands of unknown keys: name only the first
            # few, so that the error stays small and cheap to make.
            reported = {
                key: [self._unknown_key_message(key)]
                for key in unknown[:MAX_UNKNOWN_FIELDS_REPORTED]
            }
            if len(unknown) > MAX_UNKNOWN_FIELDS_REPORTED:
                first = next(iter(reported.values()))
                first[0] += f" The body has {len(unknown)} unknown fields in all."
            raise serializers.ValidationError(reported)
        return super().run_validation(data)

    def _unknown_key_message(self, key: str) -> str:
        message = f"Unknown field {_describe(key)}."
        meant = self._field_meant(key)
        if meant:
            return f"{message} Did you mean {meant!r}?"
        return f"{message} Send only snapshotId, github_repo and account_id."

    def _field_meant(self, key: str) -> str | None:
        folded = key.replace("_", "").replace("-", "").lower()
        for name in self.fields:
            if folded == name.replace("_", "").lower():
                return name
        if key.lower() in self.ALIASES:
            return self.ALIASES[key.lower()]
        matches = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.75)
        return matches[0] if matches else None

    def changes(self) -> dict:
        """Return the keyword arguments for ``services.update_snapshot``."""
        data = self.validated_data
        return {
            "snapshot_id": data.get("snapshotId", UNCHANGED),
            "github_repo": data.get("github_repo", UNCHANGED),
        }


def _json_type(value) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


@extend_schema_serializer(component_name="UpdateSnapshotResponse")
class SnapshotSerializer(serializers.Serializer):
    """An account's snapshot as the API returns it. For an account without a
    record every field but account_id is null."""

    account_id = serializers.UUIDField(
        read_only=True, help_text="The account ID this snapshot belongs to"
    )
    snapshot_id = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The snapshot ID that was set for the account; null if none is set",
    )
    expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the snapshot expires; null if no snapshot is set",
    )
    github_repo = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The GitHub repository URL associated with the sandbox",
    )
    created_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the snapshot record was created; null if the account has none",
    )


class _SnapshotValues(serializers.Serializer):
    snapshot_id = serializers.CharField(allow_null=True)
    github_repo = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class SnapshotHistorySerializer(serializers.ModelSerializer):
    """One change of an account's snapshot, with the values before and after."""

    account_id = serializers.UUIDField(read_only=True)
    before = serializers.SerializerMethodField()
    after = serializers.SerializerMethodField()

    class Meta:
        model = SnapshotHistory
        fields = [
            "account_id",
            "changed_at",
            "actor_type",
            "actor",
            "source",
            "request_id",
            "before",
            "after",
        ]

    def get_before(self, entry) -> dict:
        return self._values(entry, "before")

    def get_after(self, entry) -> dict:
        return self._values(entry, "after")

    def _values(self, entry, side):
        return _SnapshotValues(
            {
                field: getattr(entry, f"{field}_{side}")
                for field in ("snapshot_id", "github_repo", "expires_at")
            }
        ).data
