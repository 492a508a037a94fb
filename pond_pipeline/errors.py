"""The one exception tree of pond: every error a user can meet is a ``PondError``.

Each error keeps what failed (``subject``: a path, file, field or query), why
(``reason``) and what to do next (``hint``) as attributes, and builds its message
from them, so tests can assert on the parts and the CLI prints one line.
"""

__all__ = [
    "CheckFailedError",
    "ConfigError",
    "ConflictError",
    "CorruptionError",
    "DanglingLinkError",
    "FactoryError",
    "LockTimeoutError",
    "NotFoundError",
    "PondError",
    "QueryError",
    "StorageError",
]


class PondError(Exception):
    """Root of every pond error. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, reason: str, *, subject: str | None = None, hint: str | None = None):
        self.reason = reason
        self.subject = subject
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.subject}: {self.reason}" if self.subject else self.reason
        return f"{text}; {self.hint}" if self.hint else text

    def __str__(self) -> str:
        return self.message


class ConfigError(PondError):
    """Bad input: a config, a path string, a CLI value, a YAML file."""

    exit_code = 2


class NotFoundError(PondError):
    """A pond, path, version or transaction that does not exist."""


class DanglingLinkError(NotFoundError):
    """A symbolic link followed to a target that does not exist: ``link`` is the link's
    path, ``target`` the absolute path it points to."""

    def __init__(self, link: str, target: str, *, hint: str | None = None):
        self.link = link
        self.target = target
        super().__init__(
            f"symbolic link to {target}, which does not exist",
            subject=link,
            hint=hint
            or f"create {target}, or point the link elsewhere: "
            f"`pond rm {link} && pond ln TARGET {link}`",
        )


class ConflictError(PondError):
    """The pond's state forbids the change: path exists, type clash, lost commit race."""


class LockTimeoutError(ConflictError):
    """Another writer held the pond's write lock for longer than we were willing to wait."""


class FactoryError(PondError):
    """A dynamic node's factory failed to validate or to produce its content."""


class QueryError(PondError):
    """DuckDB refused or failed a query; the message carries DuckDB's words and the query."""

    @property
    def message(self) -> str:
        text = f"{self.reason} (in query: {self.subject})" if self.subject else self.reason
        return f"{text}; {self.hint}" if self.hint else text


class CheckFailedError(PondError):
    """Data failed a declared schema check; nothing was written."""


class CorruptionError(PondError):
    """Stored bytes do not match their checksum, or a stored part is missing or damaged."""


class StorageError(PondError):
    """The pond's storage refused a write: no space left, no permission, a read-only
    file system, an I/O error. ``errno`` is the operating system's error number."""

    def __init__(
        self,
        reason: str,
        *,
        subject: str | None = None,
        hint: str | None = None,
        errno: int | None = None,
    ):
        self.errno = errno
        super().__init__(reason, subject=subject, hint=hint)
