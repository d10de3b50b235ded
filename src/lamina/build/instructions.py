"""Typed Dockerfile instructions, as :func:`lamina.build.parser.parse` produces them.

Every instruction keeps its ``original`` text (for history ``created_by``), its first and last
line, the column of its keyword and its raw ``flags``. Arguments are *unexpanded*: words keep
their quotes and ``$VAR`` references, because expansion depends on the ENV/ARG state the
builder holds at that step (see :mod:`lamina.build.expand` for which instructions expand).
"""

from __future__ import annotations

import enum
import re
from typing import ClassVar

from msgspec import Struct

from lamina.build.expand import unquote_word

__all__ = [
    "Add",
    "Arg",
    "ArgDecl",
    "Cmd",
    "Command",
    "Copy",
    "Dockerfile",
    "Entrypoint",
    "Env",
    "Expose",
    "Form",
    "From",
    "Healthcheck",
    "Heredoc",
    "Instruction",
    "Label",
    "Maintainer",
    "Mount",
    "MountType",
    "NetworkMode",
    "Onbuild",
    "Run",
    "Shell",
    "Stage",
    "Stopsignal",
    "User",
    "Volume",
    "Workdir",
    "parse_duration",
]


class Form(enum.Enum):
    """How a command was written: a JSON array (exec) or free text run by ``SHELL`` (shell)."""

    SHELL = "shell"
    EXEC = "exec"


class Command(Struct, frozen=True, kw_only=True):
    """CMD/ENTRYPOINT/RUN arguments: shell form has exactly one arg, the command line."""

    form: Form
    args: tuple[str, ...]


class Heredoc(Struct, frozen=True, kw_only=True):
    """One here-document. ``content`` is what lands in the file or script: with ``<<-``
    (``chomp``) leading tabs are already stripped from every line. ``expand`` is false when
    the delimiter was quoted (``<<"EOF"``): then the body gets no build-time expansion."""

    name: str
    content: str
    expand: bool
    chomp: bool
    file_descriptor: int


class Instruction(Struct, frozen=True, kw_only=True):
    keyword: ClassVar[str] = ""
    line: int
    end_line: int
    column: int
    original: str
    flags: tuple[str, ...] = ()


class From(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "FROM"
    image: str
    platform: str | None = None
    stage_name: str | None = None  # lower-cased, as stage names are case-insensitive


class NetworkMode(enum.Enum):
    DEFAULT = "default"
    NONE = "none"
    HOST = "host"


class MountType(enum.Enum):
    BIND = "bind"
    CACHE = "cache"
    TMPFS = "tmpfs"
    SECRET = "secret"
    SSH = "ssh"


class Mount(Struct, frozen=True, kw_only=True):
    """A ``RUN --mount=`` value (BuildKit syntax). Paths and ids are unvalidated text: the
    builder must confine them (``../`` in an id or source is the builder's to refuse)."""

    type: MountType
    target: str | None = None
    source: str | None = None
    from_: str | None = None
    id: str | None = None
    readonly: bool | None = None  # None: the type's default (bind: ro, cache: rw)
    sharing: str | None = None  # cache: shared | private | locked
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: str | None = None  # tmpfs
    env: str | None = None  # secret: expose as this environment variable


class Run(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "RUN"
    command: Command
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: NetworkMode | None = None
    security: str | None = None
    devices: tuple[str, ...] = ()  # --device (CDI names); the builder may refuse them

    def inline_script(self) -> Heredoc | None:
        """The heredoc when the whole command is one (``RUN <<EOF``): BuildKit then runs its
        content as the script, through the shell, or as a file when it starts with ``#!``."""
        if len(self.heredocs) != 1 or self.command.form is not Form.SHELL:
            return None
        m = re.fullmatch(r"\d*<<-?([^<]*)", self.command.args[0])
        if m is None or unquote_word(m.group(1)) != [self.heredocs[0].name]:
            return None
        return self.heredocs[0]

    def shell_text(self) -> str:
        """The text handed to the shell: the command line followed by each heredoc's body
        and delimiter, so the shell itself reads the here-documents (BuildKit's fallback)."""
        text = self.command.args[0]
        for doc in self.heredocs:
            text += "\n" + doc.content + doc.name
        return text


class Cmd(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "CMD"
    command: Command


class Entrypoint(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "ENTRYPOINT"
    command: Command


class Shell(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "SHELL"
    args: tuple[str, ...]


class Env(Instruction, frozen=True, kw_only=True):
    """Pairs are raw (quotes kept); expand both key and value with ``expand_word``."""

    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]


class Label(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]
    literal: bool = False  # ``build --label``'s: the pairs as given, never expanded


class Maintainer(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "MAINTAINER"
    name: str


class Expose(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


class Copy(Instruction, frozen=True, kw_only=True):
    """``sources`` are context (or ``from_``) paths; ``inline`` are heredoc sources."""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    dest: str
    inline: tuple[Heredoc, ...] = ()
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()


class Add(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    dest: str
    inline: tuple[Heredoc, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None  # None: BuildKit's default (local archives unpack, URLs do not)
    exclude: tuple[str, ...] = ()


class Volume(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]
    form: Form


class User(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "USER"
    user: str


class Workdir(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


class ArgDecl(Struct, frozen=True, kw_only=True):
    name: str
    default: str | None  # raw (quotes kept); None when declared without ``=``


class Arg(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDecl, ...]


class Stopsignal(Instruction, frozen=True, kw_only=True):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


class Healthcheck(Instruction, frozen=True, kw_only=True):
    """``test`` is ``("NONE",)``, ``("CMD", argv...)`` or ``("CMD-SHELL", line)``, as the
    OCI/Docker config stores it. Durations are nanoseconds; 0 means "not set" (the runtime
    default applies), and so does ``retries == 0``."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


class Onbuild(Instruction, frozen=True, kw_only=True):
    """``expression`` is the trigger text stored in ``config.OnBuild``; ``trigger`` is it
    parsed (so errors surface now rather than in a downstream build)."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: Instruction


class Stage(Struct, frozen=True, kw_only=True):
    """A build stage: its FROM and the instructions after it up to the next FROM."""

    index: int
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.from_.stage_name


class Dockerfile(Struct, frozen=True, kw_only=True):
    """A parsed Dockerfile. ``directives`` holds the parser directives found (lower-case keys:
    ``syntax``, ``escape``, ``check``); ``escape`` is the active escape character;
    ``global_args`` are the ARGs before the first FROM (usable in FROM lines only, unless a
    stage redeclares them)."""

    directives: tuple[tuple[str, str], ...]
    escape: str
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()  # what docker prints about the text (blank continuations)


# Go's time.ParseDuration units, in nanoseconds.
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go ``time.ParseDuration`` (``1h30m``, ``1.5s``, ``300ms``, ``0``) in nanoseconds.

    Raises ValueError on anything else; the caller names the flag and line.
    """
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or (not m.group(1) and not m.group(2)):
            raise ValueError(f"invalid duration {text!r}")
        unit = _UNITS[m.group(3)]
        whole = int(m.group(1) or "0") * unit
        frac = m.group(2) or ""
        if frac:
            whole += int(frac) * unit // 10 ** len(frac)
        total += whole
        pos = m.end()
    return sign * total
