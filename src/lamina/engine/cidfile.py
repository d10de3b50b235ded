"""``--cidfile FILE``: the new container's id written to a file, as docker 20.10's CLI writes
it (cli/command/container/create.go ``cidFile``).

The file is made before anything else of the create (refused if anything is there already:
"container ID file found"), holds the full id without a newline once the container exists,
and is removed again if the create fails. A start that fails afterwards, or ``run --rm``
removing the container, leaves it, as Docker's. Made with ``O_EXCL`` where Docker looks
first and then creates: the same refusal, without the window between the two.
"""

from __future__ import annotations

import contextlib
import os

from lamina.errors import HostFileError, go_strerror


class CidFile:
    """A claimed container-id file: :meth:`write` the id, or :meth:`discard` it."""

    def __init__(self, path: str) -> None:
        """Make the file (mode 0666 less the umask, as Go's ``os.Create``). Raises
        HostFileError in Docker's words when something is there or it cannot be made."""
        self.path = path
        if os.path.exists(path):
            raise HostFileError(
                "container ID file found, make sure the other container isn't running or "
                f"delete {path}"
            )
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            raise HostFileError(
                "container ID file found, make sure the other container isn't running or "
                f"delete {path}"
            ) from None
        except OSError as exc:
            reason = go_strerror(exc.errno) if exc.errno else str(exc)
            raise HostFileError(
                f"failed to create the container ID file: open {path}: {reason}",
                errno=exc.errno,
            ) from exc

    def write(self, container_id: str) -> None:
        """Write the id and close the file. Raises HostFileError (the file is then removed)."""
        try:
            os.write(self._fd, container_id.encode())
        except OSError as exc:
            self.discard()
            raise HostFileError(
                f"failed to write the container ID to the file: {exc.strerror}", errno=exc.errno
            ) from exc
        os.close(self._fd)
        self._fd = -1

    def discard(self) -> None:
        """Close and remove the file (a create that failed). Idempotent."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
