"""The mailroom's exception root. Transient errors are retried later; permanent ones quarantine the message."""

from __future__ import annotations

from core.errors import ConfigurationError as CoreConfigurationError


class MailroomError(Exception):
    """Root of the errors the mailroom raises on purpose."""


class TransientMailError(MailroomError):
    """Raised when a server is unreachable or drops the connection: retry with backoff, lose nothing."""


class PermanentMailError(MailroomError):
    """Raised when a message itself cannot be handled; it is quarantined with this error as its reason."""


class MalformedMail(PermanentMailError):
    """Raised when a message cannot be parsed at all (not even its headers)."""


class ConfigurationError(MailroomError, CoreConfigurationError):
    """Raised when the mailroom's configuration is unusable; the message names the setting."""
