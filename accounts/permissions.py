from rest_framework.permissions import BasePermission

from .access import may_act_for


class CanActForAccount(BasePermission):
    """Object-level permission on a target Account: the authenticated account
    may act for it under the rules in ``accounts.access``."""

    message = (
        "This API key may not act for that account_id. Use an account your "
        "account owns or reaches through an organization."
    )

    def has_object_permission(self, request, view, obj):
        return may_act_for(request.user, obj)
