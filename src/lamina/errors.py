"""Every error lamina raises on purpose.

::

    LaminaError                          exit 1 unless the class says otherwise
    ├── UsageError                       exit 2: bad flags, bad --format template, bad reference
    │   └── InvalidFilterError           exit 1: a --filter Docker's daemon refuses
    ├── NotFoundError
    │   ├── ImageNotFoundError
    │   ├── LayerNotFoundError
    │   ├── BlobNotFoundError
    │   ├── ContainerNotFoundError
    │   └── VolumeNotFoundError
    ├── AmbiguousIdError(prefix)         an id prefix that several objects share
    ├── ConflictError
    │   ├── NameInUseError
    │   ├── ImageInUseError
    │   └── LayerInUseError
    ├── InvalidContentError
    │   ├── InvalidDigestError
    │   ├── DigestMismatchError(expected, actual)
    │   ├── SizeMismatchError(expected, actual)
    │   ├── InvalidManifestError
    │   ├── UnsupportedMediaTypeError
    │   ├── CompressionMismatchError(declared, detected)
    │   ├── LimitExceededError(limit, value)
    │   ├── InvalidArchiveError(member, reason)
    │   └── UnsafeArchivePathError(member, reason)
    ├── BuildError
    │   ├── DockerfileSyntaxError(line, column)
    │   └── InstructionFailedError(step, status)
    ├── DriverError
    │   └── MountError
    ├── StoreError
    ├── FileError                        a path the user named: the system's reason (cp)
    │   └── HostFileError(errno)         a host file a create or start needs (--device, --cidfile)
    └── RegistryError

Errors carry their data in fields; code never branches on message text. Context is added
with ``exc.add_note(...)``. The CLI prints ``error: <message>``, the notes, and exits with
``exit_status``.
"""

from __future__ import annotations

import errno as _errno  # (the name errno is HostFileError's field)


def shorten(text: str, width: int = 100) -> str:
    """A path or name as an error message shows it: at most ``width`` characters, so a
    hostile 4,000-character argument does not fill the terminal."""
    return text if len(text) <= width else text[: width - 3] + "..."


class LaminaError(Exception):
    """Base of every error lamina raises on purpose."""

    exit_status: int = 1
    hint: str | None = None


class UsageError(LaminaError):
    exit_status = 2


class InvalidFilterError(UsageError):
    """A ``--filter`` key or value the daemon refuses (``ps --filter status=bogus``): Docker's
    words and its status (1), where a malformed flag (no ``=``) stays a usage error (2)."""

    exit_status = 1


class NotATerminalError(UsageError):
    """``-i -t`` while stdin is not a terminal: Docker's message, and its status (1), kept
    even where lamina's own failures exit 125 (``run``, ``create``, ``start``, ``exec``)."""

    exit_status = 1

    def __init__(self) -> None:
        super().__init__("the input device is not a TTY")


class NotFoundError(LaminaError):
    pass


class ImageNotFoundError(NotFoundError):
    pass


class LayerNotFoundError(NotFoundError):
    pass


class BlobNotFoundError(NotFoundError):
    pass


class ContainerNotFoundError(NotFoundError):
    pass


class VolumeNotFoundError(NotFoundError):
    pass


class AmbiguousIdError(LaminaError):
    """An id prefix several objects share: neither found nor missing, so a lookup that tries
    several kinds (``inspect``) stops at it, as Docker's does."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"multiple IDs found with provided prefix: {shorten(prefix)}")
        self.prefix = prefix


class ConflictError(LaminaError):
    pass


class NameInUseError(ConflictError):
    pass


class ImageInUseError(ConflictError):
    pass


class LayerInUseError(ConflictError):
    pass


class InvalidContentError(LaminaError):
    pass


class InvalidDigestError(InvalidContentError):
    def __init__(self, value: str, reason: str = "not a sha256:<64 lowercase hex> digest") -> None:
        super().__init__(f"invalid digest {value[:100]!r}: {reason}")
        self.value = value
        self.reason = reason


class DigestMismatchError(InvalidContentError):
    def __init__(self, *, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"digest mismatch for {what}: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual
        self.what = what


class SizeMismatchError(InvalidContentError):
    def __init__(self, *, expected: int, actual: int, what: str = "content") -> None:
        super().__init__(f"size mismatch for {what}: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual
        self.what = what


class InvalidManifestError(InvalidContentError):
    pass


class UnsupportedMediaTypeError(InvalidContentError):
    def __init__(self, media_type: str, what: str = "content") -> None:
        super().__init__(f"unsupported media type {media_type!r} for {what}")
        self.media_type = media_type


class CompressionMismatchError(InvalidContentError):
    def __init__(self, *, declared: str, detected: str, what: str = "layer") -> None:
        super().__init__(f"{what} is declared as {declared} but its bytes are {detected}")
        self.declared = declared
        self.detected = detected


class LimitExceededError(InvalidContentError):
    def __init__(self, *, limit_name: str, limit: int, what: str = "archive") -> None:
        super().__init__(f"{what} exceeds the {limit_name} limit of {limit}")
        self.limit_name = limit_name
        self.limit = limit


class InvalidArchiveError(InvalidContentError):
    """A layer tar that cannot be read as one: bad framing, or a member kind lamina refuses.

    ``member`` is the tar member name, or ``None`` when the framing itself is broken."""

    def __init__(self, member: str | None, reason: str) -> None:
        where = f"archive member {member!r}" if member is not None else "archive"
        super().__init__(f"invalid {where}: {reason}")
        self.member = member
        self.reason = reason


class UnsafeArchivePathError(InvalidContentError):
    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"refusing archive member {member!r}: {reason}")
        self.member = member
        self.reason = reason


class BuildError(LaminaError):
    pass


class DockerfileSyntaxError(BuildError):
    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(f"Dockerfile:{line}:{column}: {message}")
        self.line = line
        self.column = column


class InstructionFailedError(BuildError):
    """A build step's command failed. ``status`` is that command's exit status, and the
    build's own, as ``docker build`` passes it on (1 when it is not one a process can
    exit with)."""

    def __init__(self, message: str, *, step: int, status: int) -> None:
        super().__init__(message)
        self.step = step
        self.status = status
        self.exit_status = status if 0 < status < 256 else 1


class DriverError(LaminaError):
    pass


class MountError(DriverError):
    pass


class StoreError(LaminaError):
    pass


class FileError(LaminaError):
    """A file or dir the user named could not be read or written: the system's reason
    (``File name too long``, ``No space left on device``), translated from its OSError."""


class HostFileError(FileError):
    """A host file a container's create or start needs (``--device``, ``--cidfile``) could
    not be looked at or made: Docker's words, the system's reason as Go says it
    (:func:`go_strerror`). ``docker run`` exits 127 when those words say "no such file or
    directory" and 126 for "permission denied" (its CLI reads them), so ``errno`` decides
    the status here; 1 otherwise, which ``run`` makes 125."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.exit_status = {_errno.ENOENT: 127, _errno.EACCES: 126}.get(errno or 0, 1)


def go_strerror(code: int) -> str:
    """The words Go prints for an errno: the C library's, lower case (``no such file or
    directory``, where Python says ``No such file or directory``)."""
    import os

    text = os.strerror(code)
    return text[:1].lower() + text[1:]


class RegistryError(LaminaError):
    pass
