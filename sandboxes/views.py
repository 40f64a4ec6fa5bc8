import logging
import time

from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import find_target, is_platform_staff, may_act_for
from accounts.permissions import CanActForAccount
from recoup.clients import client_address
from recoup.parsers import LengthRequired

from . import services
from .openapi import update_snapshot_schema
from .serializers import SnapshotSerializer, SnapshotUpdateSerializer

logger = logging.getLogger(__name__)


class SandboxSnapshotView(APIView):
    """``PATCH /api/sandboxes``: set the snapshot and repository of the
    caller's account, or of ``account_id``."""

    permission_classes = [IsAuthenticated, CanActForAccount]
    # Set as the request goes along, for the log line.
    caller = api_key = target = None

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        if request.method == "PATCH":
            self._log(response.status_code, time.perf_counter() - started)
        return response

    def perform_authentication(self, request):
        super().perform_authentication(request)
        self.caller, self.api_key = request.user, request.auth

    @update_snapshot_schema
    def patch(self, request):
        if request.stream is None:
            # WSGI servers pass a chunked body on, but Django reads a body only
            # up to its Content-Length, so without one the body is lost.
            if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
                raise LengthRequired()
            raise exceptions.ParseError(
                "The request body is empty. Send a JSON object, such as "
                '{"snapshotId": "snap_abc123"}, or {} to read the current state.'
            )
        serializer = SnapshotUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        self.target = self.get_target(serializer.validated_data.get("account_id"))
        actor = services.Actor.for_api_key(
            request.auth,
            source=client_address(request),
            request_id=getattr(request, "request_id", ""),
        )
        change = services.update_snapshot(
            account=self.target, actor=actor, **serializer.changes()
        )
        return Response(SnapshotSerializer(change.snapshot).data)

    def get_target(self, account_id):
        target = find_target(self.request.user, account_id)
        if target is None or not may_act_for(self.request.user, target):
            # Only platform staff, who may reach every account, learn that an
            # id does not exist; everyone else gets the same 403 as for an
            # account they may not reach. Both denials run the same queries,
            # so their timing tells nothing either.
            is_staff = is_platform_staff(self.request.user)
            if target is None and is_staff:
                raise exceptions.NotFound(
                    f"No account has the id {account_id}. Check the account_id."
                )
            self.permission_denied(self.request, message=CanActForAccount.message)
        self.check_object_permissions(self.request, target)
        return target

    def _log(self, status, seconds):
        # A request that failed authentication has no caller; the
        # authentication class has logged it already.
        caller, api_key = self.caller, self.api_key
        logger.info(
            "PATCH /api/sandboxes caller=%s target=%s key=%s status=%s "
            "duration_ms=%.1f",
            caller.pk if caller else "-",
            self.target.pk if self.target else "-",
            api_key.prefix if api_key else "-",
            status,
            seconds * 1000,
            extra={
                "caller_account_id": str(caller.pk) if caller else None,
                "target_account_id": str(self.target.pk) if self.target else None,
                "key_prefix": api_key.prefix if api_key else None,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )
