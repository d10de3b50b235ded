"""Docker image references: parsing, normalisation and display.

Grammar and normalisation follow ``distribution/reference`` (``regexp.go``, ``normalize.go``):
``busybox`` → ``docker.io/library/busybox``; the first path part is a registry only when it has a
``.`` or ``:`` or is ``localhost``; repository paths are lowercase; tags are
``[\\w][\\w.-]{0,127}``; the whole name is at most 255 characters. Every refusal is a
:class:`~lamina.errors.UsageError` saying what is wrong, since references come from users.
"""

from __future__ import annotations

import re
from typing import Final

from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import InvalidDigestError, UsageError

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
OFFICIAL_REPO_PREFIX: Final = "library/"
LOCALHOST: Final = "localhost"
DEFAULT_TAG: Final = "latest"
NAME_TOTAL_LENGTH_MAX: Final = 255

_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST: Final = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE: Final = re.compile(rf"{_HOST}(?::[0-9]+)?")
_PATH_RE: Final = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
TAG_RE: Final = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ID_RE: Final = re.compile(r"[a-f0-9]{64}")


class Reference(Struct, frozen=True, kw_only=True):
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """The repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """``:latest`` added when there is neither tag nor digest (Docker's ``TagNameOnly``)."""
        if self.tag is None and self.digest is None:
            return Reference(domain=self.domain, path=self.path, tag=DEFAULT_TAG)
        return self

    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:latest``, ``quay.io/x/y:1``."""
        return familiar(str(self))


def _split_domain(name: str) -> tuple[str, str, bool]:
    """(domain, remainder, domain written by the user), as ``splitDockerDomain``."""
    head, sep, rest = name.partition("/")
    explicit = bool(sep) and (
        any(c in head for c in ".:") or head == LOCALHOST or head.lower() != head
    )
    if explicit:
        domain, remainder = head, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder.partition(":")[0].partition("@")[0]:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder, explicit


def _parse(text: str) -> tuple[Reference, bool]:
    if not text:
        raise UsageError("invalid reference format: empty image name")
    if _ID_RE.fullmatch(text):
        raise UsageError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder, explicit = _split_domain(text)
    rest, at, digest_text = remainder.partition("@")
    # A ':' after the last '/' separates the tag (a registry port only appears in the domain).
    path, colon, tag = rest.rpartition(":") if ":" in rest.rpartition("/")[2] else (rest, "", "")
    if path.lower() != path:
        raise UsageError(f"invalid reference format: repository name ({path}) must be lowercase")
    if _DOMAIN_RE.fullmatch(domain) is None:
        raise UsageError(f"invalid reference format: {text!r} has an invalid registry {domain!r}")
    if _PATH_RE.fullmatch(path) is None:
        raise UsageError(
            f"invalid reference format: {text!r}: repository path {path!r} must be lowercase"
            " letters, digits and separators (., _, __, -), in /-separated components"
        )
    if colon and TAG_RE.fullmatch(tag) is None:
        raise UsageError(
            f"invalid reference format: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        )
    digest: Digest | None = None
    if at:
        try:
            digest = Digest(digest_text)
        except InvalidDigestError as exc:
            raise UsageError(f"invalid reference format: {exc}") from exc
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise UsageError(
            f"invalid reference format: repository name must not be longer than"
            f" {NAME_TOTAL_LENGTH_MAX} characters"
        )
    ref = Reference(domain=domain, path=path, tag=tag if colon else None, digest=digest)
    return ref, explicit


def parse(text: str) -> Reference:
    """Parse and normalise a user-written reference (no default tag added)."""
    return _parse(text)[0]


def normalize(text: str) -> str:
    """The full name Docker stores: ``busybox`` → ``docker.io/library/busybox:latest``."""
    return str(parse(text).with_default_tag())


def familiar(name: str) -> str:
    """Docker's display form of a normalised name: ``docker.io/library/busybox:latest`` →
    ``busybox:latest``; other registries are kept (``localhost/x:1`` stays as is)."""
    prefix = DEFAULT_DOMAIN + "/"
    if not name.startswith(prefix):
        return name
    rest = name[len(prefix) :]
    if rest.startswith(OFFICIAL_REPO_PREFIX):
        short = rest[len(OFFICIAL_REPO_PREFIX) :]
        if "/" not in short.partition(":")[0].partition("@")[0]:
            return short
    return rest


def is_short_name(text: str) -> bool:
    """True when the user wrote no registry (``busybox``, ``me/app:1``)."""
    return not _parse(text)[1]


def lookup_candidates(text: str) -> list[str]:
    """:func:`candidates`, or none when ``text`` is not a valid name (a full ``sha256:...`` id,
    say): then only id lookups can match."""
    try:
        return candidates(text)
    except UsageError:
        return []


def candidates(text: str) -> list[str]:
    """Normalised names to look up locally for ``text``, in order.

    Docker's normalisation comes first; for a short name (no registry written), podman's
    ``localhost/NAME`` follows, so an image built or imported as ``localhost/app`` is found as
    ``app``. The engine takes the first candidate present, and only uses the ``localhost/``
    one when it is the unique match.
    """
    ref, explicit = _parse(text)
    full = ref.with_default_tag()
    out = [str(full)]
    if not explicit:
        path = ref.path
        # "library/" was added by normalisation unless the user wrote it.
        if path.startswith(OFFICIAL_REPO_PREFIX) and not text.startswith(OFFICIAL_REPO_PREFIX):
            path = path[len(OFFICIAL_REPO_PREFIX) :]
        local = Reference(domain=LOCALHOST, path=path, tag=full.tag, digest=full.digest)
        out.append(str(local))
    return out
