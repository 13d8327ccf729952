"""The exception root of the shared core.

Every error the core raises on purpose is a ``CoreError``. Callers that can retry tell the two families apart:
``TransientError`` (try again later: a database that is not up yet) and ``PermanentError`` (retrying the same
input fails the same way: a broken knowledge article, a bad setting).
"""


class CoreError(Exception):
    """Root of all errors raised deliberately by the shared core."""


class TransientError(CoreError):
    """Raised when an operation failed for a reason that may go away by itself (a service not reachable)."""


class PermanentError(CoreError):
    """Raised when an input or configuration is wrong: retrying without changing it cannot succeed."""


class ConfigurationError(PermanentError):
    """Raised when a setting (environment variable or default) has a value the program cannot use."""


class KnowledgeError(PermanentError):
    """Raised when a knowledge article is broken; the message names the file and the field."""


class LeaseUnavailable(TransientError):
    """Raised when the database that keeps a lease cannot be reached: the lease is not held; try again later."""
