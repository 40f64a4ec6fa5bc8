"""The API's one authentication scheme: an API key in a header."""

import logging

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from recoup.clients import client_address

from .keys import EXPIRED, REVOKED, UNKNOWN, KeyRejected, verify_key
from .throttling import AuthFailureLimiter

logger = logging.getLogger(__name__)

OPTIONAL_WHITESPACE = " \t"

HOW_TO_SEND = "Send the key as 'x-api-key: <key>' or 'Authorization: Bearer <key>'."

REJECTION_MESSAGES = {
    UNKNOWN: "The API key is not valid. Check it, or create a new one.",
    REVOKED: "The API key has been revoked. Create a new key and use that.",
    EXPIRED: "The API key has expired. Create a new key and use that.",
}


class APIKeyAuthentication(BaseAuthentication):
    """Authenticate a request by exactly one API key, sent either as
    ``x-api-key`` or as an ``Authorization: Bearer`` token.

    ``request.user`` becomes the key's Account and ``request.auth`` the APIKey.
    """

    def authenticate(self, request):
        limiter = AuthFailureLimiter()
        limiter.check(request)
        try:
            return self._authenticate(request)
        except (
            exceptions.AuthenticationFailed,
            exceptions.NotAuthenticated,
        ) as failure:
            logger.warning(
                "API authentication failed from %s: %s",
                client_address(request),
                failure.get_codes(),
                extra={"client_address": client_address(request)},
            )
            # Raises Throttled instead if this failure went over the limit.
            limiter.record_failure(request)
            raise

    def _authenticate(self, request):
        # Only the optional whitespace around a field value, space and tab
        # (RFC 7230, section 3.2), is stripped. Any other character around a
        # key makes it invalid.
        header_key = request.META.get("HTTP_X_API_KEY", "").strip(OPTIONAL_WHITESPACE)
        authorization = request.META.get("HTTP_AUTHORIZATION", "").strip(
            OPTIONAL_WHITESPACE
        )

        if header_key and authorization:
            raise exceptions.AuthenticationFailed(
                "Both x-api-key and Authorization were sent. Send only one of them.",
                code="both_credentials",
            )
        if authorization:
            scheme, _, token = authorization.partition(" ")
            token = token.strip(OPTIONAL_WHITESPACE)
            if scheme.lower() != "bearer" or not token or " " in token:
                raise exceptions.AuthenticationFailed(
                    "The Authorization header is not 'Bearer <key>'. " + HOW_TO_SEND,
                    code="malformed_authorization",
                )
            raw_key = token
        elif header_key:
            raw_key = header_key
        else:
            raise exceptions.NotAuthenticated(
                "No API key was sent. " + HOW_TO_SEND, code="missing_key"
            )

        try:
            api_key = verify_key(raw_key)
        except KeyRejected as rejected:
            raise exceptions.AuthenticationFailed(
                REJECTION_MESSAGES[rejected.reason], code=f"{rejected.reason}_key"
            ) from None
        return api_key.account, api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
