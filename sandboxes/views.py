from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import find_target, is_platform_staff
from accounts.permissions import CanActForAccount

from . import services
from .serializers import SnapshotSerializer, SnapshotUpdateSerializer


class SandboxSnapshotView(APIView):
    """``PATCH /api/sandboxes``: set the snapshot and repository of the
    caller's account, or of ``account_id``."""

    permission_classes = [IsAuthenticated, CanActForAccount]

    def patch(self, request):
        if request.stream is None:
            raise exceptions.ParseError(
                "The request body is empty. Send a JSON object, such as "
                '{"snapshotId": "snap_abc123"}, or {} to read the current state.'
            )
        serializer = SnapshotUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        target = self.get_target(serializer.validated_data.get("account_id"))
        change = services.update_snapshot(account=target, **serializer.changes())
        return Response(SnapshotSerializer(change.snapshot).data)

    def get_target(self, account_id):
        target = find_target(self.request.user, account_id)
        if target is None:
            # Only platform staff, who may reach every account, learn that an
            # id does not exist; everyone else gets the same 403 as for an
            # account they may not reach.
            if is_platform_staff(self.request.user):
                raise exceptions.NotFound(
                    f"No account has the id {account_id}. Check the account_id."
                )
            self.permission_denied(self.request, message=CanActForAccount.message)
        self.check_object_permissions(self.request, target)
        return target
