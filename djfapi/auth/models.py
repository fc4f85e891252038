"""What the token lifecycle keeps: families of refresh tokens, and revoked token ids.

A **family** starts at login and lives through every rotation of its refresh token;
revoking it (logout, reuse of a rotated refresh token, the user made inactive) ends
its refresh tokens and, through the ``fam`` claim, every access token issued in it.
A **revoked token** is a ``jti`` refused until its ``exp`` (any token with a ``jti``,
issued here or not). Rows past their expiry are pruned by ``prune_tokens``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class TokenFamily(models.Model):
    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at: models.DateTimeField[Any, Any] = models.DateTimeField()
    #: The expiry of the newest token issued in the family: after it, nothing of it is valid.
    expires_at: models.DateTimeField[Any, Any] = models.DateTimeField(db_index=True)
    revoked_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True, db_index=True)
    revoked_reason: models.CharField[str, str] = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "token family"
        verbose_name_plural = "token families"

    def __str__(self) -> str:
        return f"{self.id} ({'revoked' if self.revoked_at else 'active'})"


class RefreshToken(models.Model):
    jti: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    family: models.ForeignKey[Any, Any] = models.ForeignKey(
        TokenFamily, on_delete=models.CASCADE, related_name="refresh_tokens"
    )
    issued_at: models.DateTimeField[Any, Any] = models.DateTimeField()
    expires_at: models.DateTimeField[Any, Any] = models.DateTimeField(db_index=True)
    #: Set when the token is exchanged; presenting it again is a reuse, which revokes the family.
    used_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.jti


class RevokedToken(models.Model):
    jti: models.CharField[str, str] = models.CharField(primary_key=True, max_length=255)
    expires_at: models.DateTimeField[Any, Any] = models.DateTimeField(db_index=True)
    revoked_at: models.DateTimeField[Any, Any] = models.DateTimeField()
    reason: models.CharField[str, str] = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return self.jti
