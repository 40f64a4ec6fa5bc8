from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import ngettext

from accounts.admin import UUIDSearchMixin
from recoup.clients import client_address

from .models import AccountSnapshot, SnapshotHistory
from .services import TRACKED_FIELDS, Actor, extend_expiry, update_snapshot

# The fields that the form edits and the service writes.
_EDITABLE_FIELDS = ("snapshot_id", "github_repo")

# The maximum number of history entries on a snapshot's change page. When it
# leaves entries out, the page links to the snapshot history admin.
HISTORY_ROWS_SHOWN = 50


def staff_actor(request) -> Actor:
    """Return the actor that the history records for an admin request."""
    return Actor.for_staff(
        request.user,
        source=client_address(request),
        request_id=getattr(request, "request_id", ""),
    )


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
    form rejects what the service would reject. An empty field is None.

    The fields keep surrounding whitespace, because the API rejects
    " snap_1 " and the admin must show the same error instead of storing
    "snap_1".
    """

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
        for name in _EDITABLE_FIELDS:
            if name in self.fields:
                self.fields[name].strip = False


def _copy_fields(source, target):
    for field in target._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def _changed_values(entry: SnapshotHistory, empty_value: str):
    """Yield (label, before, after) for each field that the entry changed."""
    for name in TRACKED_FIELDS:
        before = getattr(entry, f"{name}_before")
        after = getattr(entry, f"{name}_after")
        if before != after:
            label = capfirst(AccountSnapshot._meta.get_field(name).verbose_name)
            yield (
                label,
                display_for_value(before, empty_value),
                display_for_value(after, empty_value),
            )


def _history_row(entry: SnapshotHistory, empty_value: str):
    changes = format_html_join(
        mark_safe("<br>"), "{}: {} → {}", _changed_values(entry, empty_value)
    )
    return (
        display_for_value(entry.changed_at, empty_value),
        entry.actor,
        entry.get_actor_type_display(),
        entry.source or empty_value,
        entry.request_id or empty_value,
        changes or "No change",
    )


def render_history_table(entries, empty_value: str):
    """Render history entries as an HTML table, escaping every value."""
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (_history_row(entry, empty_value) for entry in entries),
    )
    return format_html(
        '<table class="snapshot-history"><thead><tr>'
        '<th scope="col">Changed at</th><th scope="col">Changed by</th>'
        '<th scope="col">Source</th><th scope="col">Request ID</th>'
        '<th scope="col">Changes</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """Snapshots, written only through ``sandboxes.services``, which also sets
    ``expires_at`` and records the staff user in the snapshot history."""

    form = AccountSnapshotForm
    list_display = ("account", "snapshot_id", "github_repo", "expires_at", "updated_at")
    list_select_related = ("account",)
    list_filter = (SnapshotStateFilter,)
    search_fields = ("account__name", "snapshot_id")
    uuid_search_fields = ("account",)
    autocomplete_fields = ("account",)
    actions = ("extend_expiry_selected", "clear_selected")
    fields = ("account", *_EDITABLE_FIELDS, "expires_at", "created_at", "updated_at")
    readonly_fields = ("expires_at", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": self.get_fields(request, obj)})]
        if obj is not None:
            fieldsets.append(("Snapshot history", {"fields": ("change_history",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("account", *self.readonly_fields, "change_history")

    def has_delete_permission(self, request, obj=None):
        # The service has no delete. Clearing both fields is the supported
        # way to reset an account's snapshot.
        return False

    @admin.display(description="changes, newest first")
    def change_history(self, obj):
        """Render the account's newest history entries in one query."""
        empty_value = self.get_empty_value_display()
        entries = list(
            SnapshotHistory.objects.filter(account_id=obj.account_id).order_by("-id")[
                : HISTORY_ROWS_SHOWN + 1
            ]
        )
        if not entries:
            return "No changes recorded."

        table = render_history_table(entries[:HISTORY_ROWS_SHOWN], empty_value)
        if len(entries) <= HISTORY_ROWS_SHOWN:
            return table
        history_url = reverse("admin:sandboxes_snapshothistory_changelist")
        return format_html(
            '{}<p>Only the {} newest changes are shown. <a href="{}?account={}">'
            "See every change of this account</a>.</p>",
            table,
            HISTORY_ROWS_SHOWN,
            history_url,
            obj.account_id,
        )

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
        result = update_snapshot(
            account=obj.account, actor=staff_actor(request), **changes
        )
        _copy_fields(result.snapshot, obj)

    @admin.action(
        description="Extend the expiry of selected snapshots by the TTL",
        permissions=["change"],
    )
    def extend_expiry_selected(self, request, queryset):
        """Extend each record through the service. Records without a snapshot
        ID have no expiry, so the service skips them."""
        actor = staff_actor(request)
        now = timezone.now()
        extended = skipped = 0
        for snapshot in queryset.select_related("account"):
            if extend_expiry(account=snapshot.account, actor=actor, now=now).written:
                extended += 1
            else:
                skipped += 1

        message = ngettext(
            "Extended the expiry of %(count)d snapshot.",
            "Extended the expiry of %(count)d snapshots.",
            extended,
        ) % {"count": extended}
        if skipped:
            message += " " + ngettext(
                "Skipped %(count)d without a snapshot ID.",
                "Skipped %(count)d without a snapshot ID.",
                skipped,
            ) % {"count": skipped}
        level = messages.SUCCESS if extended else messages.WARNING
        self.message_user(request, message, level)

    @admin.action(description="Clear selected snapshots", permissions=["change"])
    def clear_selected(self, request, queryset):
        """Clear the snapshot ID and expiry of each record through the service,
        keeping its repository. Records that have no snapshot ID are left
        alone, so the history gets no entries that change nothing."""
        actor = staff_actor(request)
        now = timezone.now()
        cleared = skipped = 0
        for snapshot in queryset.select_related("account"):
            if snapshot.snapshot_id is None:
                skipped += 1
                continue
            update_snapshot(
                account=snapshot.account, actor=actor, snapshot_id=None, now=now
            )
            cleared += 1

        message = ngettext(
            "Cleared %(count)d snapshot.", "Cleared %(count)d snapshots.", cleared
        ) % {"count": cleared}
        if skipped:
            message += " " + ngettext(
                "%(count)d had no snapshot ID.",
                "%(count)d had no snapshot ID.",
                skipped,
            ) % {"count": skipped}
        level = messages.SUCCESS if cleared else messages.WARNING
        self.message_user(request, message, level)


@admin.register(SnapshotHistory)
class SnapshotHistoryAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """The snapshot history, read-only, because only ``sandboxes.services``
    writes it, in the same transaction as each change."""

    list_display = ("account", "changed_at", "actor_type", "actor", "source")
    list_select_related = ("account",)
    list_filter = ("actor_type",)
    search_fields = ("account__name", "=request_id")
    uuid_search_fields = ("account",)
    date_hierarchy = "changed_at"
    ordering = ["-id"]
    # The admin cannot change or delete entries, so it offers no actions.
    actions = None
    fields = (
        "account",
        "changed_at",
        "actor_type",
        "actor",
        "user",
        "api_key",
        "source",
        "request_id",
        "snapshot_id_before",
        "snapshot_id_after",
        "github_repo_before",
        "github_repo_after",
        "expires_at_before",
        "expires_at_after",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
