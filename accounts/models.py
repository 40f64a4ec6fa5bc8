import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Account(models.Model):
    """A person, artist or label on Recoup; an organization has other accounts
    as members."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    is_organization = models.BooleanField(
        "organization",
        default=False,
        help_text="Organizations have other accounts as members.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    # An authenticated API caller is an Account: DRF's IsAuthenticated reads this.
    is_authenticated = True


class OrganizationMembership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="member_links",
        limit_choices_to={"is_organization": True},
    )
    role = models.CharField(max_length=16, choices=Role, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "organization"], name="unique_membership"
            ),
            models.CheckConstraint(
                condition=~Q(account=F("organization")),
                name="membership_not_self",
                violation_error_message="An account cannot be a member of itself.",
            ),
        ]

    def __str__(self):
        return f"{self.account} in {self.organization} ({self.role})"

    def clean(self):
        if self.organization_id and not self.organization.is_organization:
            raise ValidationError(
                {"organization": f"{self.organization} is not an organization."}
            )


class APIKeyQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class APIKey(models.Model):
    """An API key of an account. Only the key's digest is stored; the key
    itself is shown once, when it is created."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(
        max_length=32, editable=False, help_text="The key's first characters."
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APIKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self):
        label = self.name or "API key"
        return f"{label} ({self.prefix}…)"

    def is_expired(self, now=None):
        return self.expires_at is not None and self.expires_at <= (
            now or timezone.now()
        )
