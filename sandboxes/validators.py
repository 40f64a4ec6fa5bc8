"""The rules for a snapshot ID and a repository URL, shared by the API
serializer, the admin form and the service."""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

SNAPSHOT_ID_MAX_LENGTH = 255
GITHUB_REPO_MAX_LENGTH = 2048

# Printable ASCII without the space: 0x21 to 0x7E.
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_url_validator = URLValidator(schemes=["http", "https"])


def validate_snapshot_id(value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError("snapshotId must be a string or null.", code="type")
    if not value:
        raise ValidationError(
            "snapshotId is empty. Send 1 to 255 characters, or null to clear it.",
            code="blank",
        )
    if len(value) > SNAPSHOT_ID_MAX_LENGTH:
        raise ValidationError(
            f"snapshotId is {len(value)} characters long. Send at most "
            f"{SNAPSHOT_ID_MAX_LENGTH}.",
            code="max_length",
        )
    if not _PRINTABLE.fullmatch(value):
        raise ValidationError(
            "snapshotId contains whitespace, control or non-ASCII characters. "
            "Use printable ASCII only (0x21 to 0x7E).",
            code="invalid",
        )


def validate_github_repo(value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError("github_repo must be a string or null.", code="type")
    if len(value) > GITHUB_REPO_MAX_LENGTH:
        raise ValidationError(
            f"github_repo is {len(value)} characters long. Send a URL of at "
            f"most {GITHUB_REPO_MAX_LENGTH}.",
            code="max_length",
        )
    if not _PRINTABLE.fullmatch(value):
        raise ValidationError(
            "github_repo contains whitespace, control or non-ASCII characters. "
            "Send an absolute http or https URL, percent-encoded.",
            code="invalid",
        )
    try:
        _url_validator(value)
        parts = urlsplit(value)
    except (ValidationError, ValueError):
        raise ValidationError(
            "github_repo is not an absolute http or https URL. Send one like "
            "https://github.com/org/repo.",
            code="invalid",
        ) from None
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "github_repo contains a user name or password. Send the URL "
            "without credentials.",
            code="credentials",
        )
