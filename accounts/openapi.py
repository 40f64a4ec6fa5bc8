"""The OpenAPI description of the API-key authentication: two security
schemes, either of which is accepted."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = ["ApiKeyAuth", "BearerAuth"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "An API key, recoup_sk_ followed by 43 characters.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same API key as a bearer token.",
            },
        ]
