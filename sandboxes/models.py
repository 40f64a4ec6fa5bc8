from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Account

from .validators import (
    GITHUB_REPO_MAX_LENGTH,
    SNAPSHOT_ID_MAX_LENGTH,
    validate_github_repo,
    validate_snapshot_id,
)


class AccountSnapshotQuerySet(models.QuerySet):
    def active(self, now=None):
        return self.filter(expires_at__gt=now or timezone.now())

    def expired(self, now=None):
        return self.filter(expires_at__lte=now or timezone.now())


class AccountSnapshot(models.Model):
    """The sandbox snapshot and repository that an account's new sandboxes
    start from. Change it only through ``sandboxes.services``."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="snapshot"
    )
    # NULL, not "", marks an unset value: the API returns it as null.
    snapshot_id = models.CharField(  # noqa: DJ001
        verbose_name="snapshot ID",
        max_length=SNAPSHOT_ID_MAX_LENGTH,
        null=True,
        blank=True,
        validators=[validate_snapshot_id],
    )
    github_repo = models.CharField(  # noqa: DJ001
        "GitHub repository",
        max_length=GITHUB_REPO_MAX_LENGTH,
        null=True,
        blank=True,
        validators=[validate_github_repo],
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AccountSnapshotQuerySet.as_manager()

    class Meta:
        verbose_name = "account snapshot"
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["expires_at"], name="snapshot_expires_at")]

    def __str__(self):
        return f"{self.snapshot_id or 'no snapshot'} for {self.account}"

    def is_expired(self, now=None):
        return self.expires_at is not None and self.expires_at <= (
            now or timezone.now()
        )


class SnapshotHistory(models.Model):
    """One change to an account's snapshot: the values before and after, who
    made it and from where. Written by ``sandboxes.services`` in the same
    transaction as the change."""

    class ActorType(models.TextChoices):
        API_KEY = "api_key", "API key"
        STAFF = "staff", "Staff user"
        COMMAND = "command", "Management command"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="snapshot_history"
    )
    changed_at = models.DateTimeField(default=timezone.now, editable=False)
    actor_type = models.CharField(max_length=16, choices=ActorType)
    actor = models.CharField(
        max_length=255,
        help_text="The key's prefix, the staff user's name or the command's name.",
    )
    api_key = models.ForeignKey(
        "accounts.APIKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(
        max_length=255,
        blank=True,
        help_text="The client address, or the host a command ran on.",
    )
    request_id = models.CharField(max_length=128, blank=True)
    snapshot_id_before = models.CharField(  # noqa: DJ001
        "snapshot ID before", max_length=SNAPSHOT_ID_MAX_LENGTH, null=True, blank=True
    )
    snapshot_id_after = models.CharField(  # noqa: DJ001
        "snapshot ID after", max_length=SNAPSHOT_ID_MAX_LENGTH, null=True, blank=True
    )
    github_repo_before = models.CharField(  # noqa: DJ001
        "GitHub repository before",
        max_length=GITHUB_REPO_MAX_LENGTH,
        null=True,
        blank=True,
    )
    github_repo_after = models.CharField(  # noqa: DJ001
        "GitHub repository after",
        max_length=GITHUB_REPO_MAX_LENGTH,
        null=True,
        blank=True,
    )
    expires_at_before = models.DateTimeField(null=True, blank=True)
    expires_at_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "snapshot history entry"
        verbose_name_plural = "snapshot history"
        # Changes to one account are serialized by its record's row lock, so
        # id order is the order in which they were made. changed_at is taken
        # before the lock and can be a few milliseconds out of that order.
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="history_account_order")]

    def __str__(self):
        return f"{self.account_id} changed by {self.actor} at {self.changed_at}"
