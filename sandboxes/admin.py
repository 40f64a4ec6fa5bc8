
from django import forms
from django.contrib import admin

from accounts.admin import UUIDSearchMixin
from recoup.clients import client_address

from .models import AccountSnapshot
from .services import Actor, update_snapshot

# The fields that the form edits and the service writes.
_EDITABLE_FIELDS = ("snapshot_id", "github_repo")


class SnapshotStateFilter(admin.SimpleListFilter):
    """Split snapshots by expiry. Records without a snapshot ID have no
    expiry time and are in neither state."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.active()
        if self.value() == "expired":
            return queryset.expired()
        return queryset


class AccountSnapshotForm(forms.ModelForm):
    """The model fields carry the validators in sandboxes.validators, so the
    form rejects what the service would reject. An empty field is None."""

    def __init__(self, *args, instance=None, **kwargs):
        if instance is None:
            # AccountSnapshot() contains DatabaseDefault placeholders in its
            # db_default fields, which the form would render as text.
            instance = AccountSnapshot(
                snapshot_id=None,
                github_repo=None,
                expires_at=None,
                created_at=None,
                updated_at=None,
            )
        super().__init__(*args, instance=instance, **kwargs)


def _copy_fields(source, target):
    for field in target._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """Snapshots, written only through ``update_snapshot``, which also sets
    ``expires_at`` and records the staff user in the snapshot history."""

    form = AccountSnapshotForm
    list_display = ("account", "snapshot_id", "github_repo", "expires_at", "updated_at")
    list_select_related = ("account",)
    list_filter = (SnapshotStateFilter,)
    search_fields = ("account__name", "snapshot_id")
    uuid_search_fields = ("account",)
    autocomplete_fields = ("account",)
    fields = ("account", *_EDITABLE_FIELDS, "expires_at", "created_at", "updated_at")
    readonly_fields = ("expires_at", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("account", *self.readonly_fields)

    def has_delete_permission(self, request, obj=None):
        # The service has no delete. Clearing both fields is the supported
        # way to reset an account's snapshot.
        return False

    def save_model(self, request, obj, form, change):
        """Write the changed fields through the service, then load its result
        into ``obj`` for the admin's log entry and redirect."""
        changes = {
            field: form.cleaned_data[field]
            for field in _EDITABLE_FIELDS
            if not change or field in form.changed_data
        }
        if not changes:
            return
        actor = Actor.for_staff(
            request.user,
            source=client_address(request),
            request_id=getattr(request, "request_id", ""),
        )
        result = update_snapshot(account=obj.account, actor=actor, **changes)
        _copy_fields(result.snapshot, obj)
