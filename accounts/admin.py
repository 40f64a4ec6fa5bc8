import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from .keys import generate_raw_key, revoke_keys, set_key_value
from .models import Account, APIKey, OrganizationMembership


def parse_uuid(text: str) -> uuid.UUID | None:
    """Return ``text`` as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


class UUIDSearchMixin:
    """Make a search term that is a UUID also match these fields exactly.

    The admin's own ``=field`` search compares the UUID as text, so on
    PostgreSQL it cannot use the index and matches only the dashed spelling.
    An exact lookup on the parsed UUID uses the index and accepts every
    spelling that ``uuid.UUID`` parses.
    """

    uuid_search_fields = ()

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(
            request, queryset, search_term
        )
        value = parse_uuid(search_term)
        if value is not None and self.uuid_search_fields:
            matches = Q.create(
                [(field, value) for field in self.uuid_search_fields],
                connector=Q.OR,
            )
            results |= queryset.filter(matches)
        return results, may_have_duplicates


class AccountKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("organization", "Organization"), ("personal", "Personal")]

    def queryset(self, request, queryset):
        if self.value() == "organization":
            return queryset.filter(is_organization=True)
        if self.value() == "personal":
            return queryset.filter(is_organization=False)
        return queryset


class OrganizationMembershipForm(forms.ModelForm):
    class Meta:
        error_messages = {
            "organization": {
                "invalid_choice": (
                    "That account is not an organization. Choose an account "
                    "that is marked as an organization."
                )
            }
        }

    def clean(self):
        cleaned_data = super().clean()
        # In an inline the parent's foreign key is left out of the model's
        # constraint checks, so membership_not_self is checked here as well.
        account = cleaned_data.get("account")
        organization = cleaned_data.get("organization")
        if account and organization and account.pk == organization.pk:
            raise ValidationError("An account cannot be a member of itself.")
        return cleaned_data


class MemberFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if self.instance.is_organization:
            return
        for form in self.forms:
            if form.instance.pk is None and not form.has_changed():
                continue
            if self._should_delete_form(form):
                continue
            raise ValidationError(
                "Only an organization can have members. Mark this account as "
                "an organization, or delete its members."
            )


class MembershipInline(admin.TabularInline):
    """The organizations this account is a member of."""

    model = OrganizationMembership
    fk_name = "account"
    form = OrganizationMembershipForm
    fields = ("organization", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("organization",)
    ordering = ("organization__name",)
    extra = 0
    verbose_name = "membership"
    verbose_name_plural = "member of"


class MemberInline(admin.TabularInline):
    """The members of this account, when it is an organization."""

    model = OrganizationMembership
    fk_name = "organization"
    form = OrganizationMembershipForm
    formset = MemberFormSet
    fields = ("account", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("account",)
    ordering = ("account__name",)
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "members"


class APIKeyInline(admin.TabularInline):
    """The account's keys, read-only: keys are issued from the API key admin,
    which shows the new key once."""

    model = APIKey
    fields = (
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def has_add_permission(self, request, obj):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(UUIDSearchMixin, admin.ModelAdmin):
    list_display = ("name", "id", "is_organization", "created_at")
    list_filter = (AccountKindFilter,)
    search_fields = ("name",)
    uuid_search_fields = ("pk",)
    fields = ("name", "is_organization", "id", "created_at")
    readonly_fields = ("id", "created_at")
    inlines = (MembershipInline, MemberInline, APIKeyInline)


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(UUIDSearchMixin, admin.ModelAdmin):
    form = OrganizationMembershipForm
    list_display = ("account", "organization", "role", "created_at")
    list_select_related = ("account", "organization")
    list_filter = ("role",)
    search_fields = ("account__name", "organization__name")
    uuid_search_fields = ("account", "organization")
    autocomplete_fields = ("account", "organization")
    fields = ("account", "organization", "role", "created_at")
    readonly_fields = ("created_at",)


class KeyStateFilter(admin.SimpleListFilter):
    """Split keys into three disjoint states: a revoked key counts as revoked
    whether or not it has also expired."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.active(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class APIKeyAddForm(forms.ModelForm):
    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError(
                "This time is in the past. Enter a future expiry time, or "
                "leave it empty for a key that does not expire."
            )
        return expires_at


# The request attribute that carries a new key's raw value from save_model to
# response_add. It lives only as long as the request.
_RAW_KEY_ATTRIBUTE = "_issued_raw_api_key"


@admin.register(APIKey)
class APIKeyAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """API keys. The digest is never shown, and the raw key is shown once, on
    the page that follows the add form."""

    def lookup_allowed(self, lookup, value, request=None):
        # A changelist filter such as ?digest__startswith= would reveal the
        # digest one character at a time.
        if lookup.split("__")[0] == "digest":
            return False
        return super().lookup_allowed(lookup, value, request)

    list_display = (
        "name",
        "prefix",
        "account",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_display_links = ("name", "prefix")
    list_select_related = ("account",)
    list_filter = (KeyStateFilter,)
    search_fields = ("name", "prefix", "account__name")
    uuid_search_fields = ("account",)
    autocomplete_fields = ("account",)
    actions = ("revoke_selected",)

    add_form = APIKeyAddForm
    add_fields = ("account", "name", "expires_at")
    fields = (
        "account",
        "name",
        "prefix",
        "expires_at",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = ("account", "prefix", "created_at", "last_used_at", "revoked_at")
    change_form_template = "admin/accounts/apikey/change_form.html"
    key_issued_template = "admin/accounts/apikey/key_issued.html"

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            raw_key = generate_raw_key()
            set_key_value(obj, raw_key)
            setattr(request, _RAW_KEY_ATTRIBUTE, raw_key)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """Render the new key's raw value, whichever save button was used.

        The page is the only place the raw key appears: it is not put into
        messages or the session, and the admin's never_cache headers keep
        the response out of caches.
        """
        raw_key = request.__dict__.pop(_RAW_KEY_ATTRIBUTE)
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": opts,
            "api_key": obj,
            "raw_key": raw_key,
            "change_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
            ),
            "add_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_add"),
        }
        return TemplateResponse(request, self.key_issued_template, context)

    def response_change(self, request, obj):
        if "_revoke" not in request.POST:
            return super().response_change(request, obj)
        if revoke_keys(APIKey.objects.filter(pk=obj.pk)):
            self.message_user(request, f"Revoked the key “{obj}”.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"The key “{obj}” was already revoked.", messages.WARNING
            )
        return HttpResponseRedirect(request.path)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        selected = queryset.count()
        revoked = revoke_keys(queryset)
        message = ngettext(
            "Revoked %(count)d key.", "Revoked %(count)d keys.", revoked
        ) % {"count": revoked}
        already_revoked = selected - revoked
        if already_revoked:
            message += " " + ngettext(
                "%(count)d was already revoked.",
                "%(count)d were already revoked.",
                already_revoked,
            ) % {"count": already_revoked}
        self.message_user(request, message, messages.SUCCESS)
