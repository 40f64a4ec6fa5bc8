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

# The github_repo URLs validate_github_repo accepts, as an ECMA-262 pattern,
# which the API schema publishes.
# The scheme is http or https, in any case. The host is a name with a
# top-level domain, localhost, an IPv4 address or a bracketed IPv6 address,
# as Django's URLValidator accepts them, and a host name has at most 253
# characters (RFC 1034). An optional port follows, then path, query and
# fragment in RFC 3986 characters. Negative lookaheads carry the length
# limits, because Hypothesis, which generates test data from this pattern,
# is slow with positive ones.
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:0|25[0-5]|2[0-4][0-9]|1[0-9]?[0-9]?|[1-9][0-9]?)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
# RFC 3986, section 3.2.2: the nine forms of an IPv6 address.
_IPV6 = "(?:{})".format(
    "|".join(
        [
            rf"(?:{_H16}:){{6}}{_LS32}",
            rf"::(?:{_H16}:){{5}}{_LS32}",
            rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
)
# Django's DomainNameValidator, restricted to ASCII.
_HOST_NAME = (
    "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*"
    r"\.(?!-)(?:[A-Za-z-]{2,63}|[Xx][Nn]--[A-Za-z0-9]{1,59})(?<!-)\.?"
)
_LOCALHOST = "[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]"
_HOST = (
    rf"(?:(?![^:/?#]{{254}})(?:{_IPV4}|{_HOST_NAME}|{_LOCALHOST})"
    # Django accepts IPv6 addresses of at most 39 characters.
    rf"|\[(?![0-9A-Fa-f:.]{{40}}){_IPV6}\])"
)
# RFC 3986 pchar without percent-encoding. The path also allows "/", and the
# query and the fragment allow "/" and "?".
_PCHAR = "-A-Za-z0-9._~!$&'()*+,;=:@"
_ESCAPE = "%[0-9A-Fa-f]{2}"
# A port from 0 to 65535, as urlsplit() accepts it.
_PORT = (
    "(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}"
    "|655[0-2][0-9]|6553[0-5])"
)
GITHUB_REPO_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(?::{_PORT})?"
    rf"(?:/(?:[{_PCHAR}/]|{_ESCAPE})*)?"
    rf"(?:\?(?:[{_PCHAR}/?]|{_ESCAPE})*)?"
    rf"(?:#(?:[{_PCHAR}/?]|{_ESCAPE})*)?$"
)
_github_repo = re.compile(GITHUB_REPO_PATTERN)


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
        parts.port  # noqa: B018 (raises ValueError for a port over 65535)
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
    if not _github_repo.fullmatch(value):
        raise ValidationError(
            "github_repo is not an absolute http or https URL in RFC 3986 "
            "characters. Percent-encode any other character, as in "
            "https://github.com/org/repo?q=a%20b.",
            code="invalid",
        )
