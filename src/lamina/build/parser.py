"""Dockerfile text -> instructions, read the way BuildKit's ``frontend/dockerfile/parser`` does.

Two stages, as in BuildKit: :func:`parse_nodes` turns text into :class:`Node` s (parser
directives, continuations, comments, flags, JSON vs shell form, heredocs); :func:`parse` types
them into :mod:`lamina.build.instructions` and checks each instruction's arguments and flags.
Every syntax error is a ``DockerfileSyntaxError`` naming the physical line and column.
"""

from __future__ import annotations

import bisect
import csv
import json
import re
from typing import Any, TypedDict

import msgspec.structs
from msgspec import Struct

from lamina.build.expand import lex_raw_words, split_key_values, split_words, unquote_word
from lamina.build.instructions import (
    Add,
    Arg,
    ArgDecl,
    Cmd,
    Command,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    Form,
    From,
    Healthcheck,
    Heredoc,
    Instruction,
    Label,
    Maintainer,
    Mount,
    MountType,
    NetworkMode,
    Onbuild,
    Run,
    Shell,
    Stage,
    Stopsignal,
    User,
    Volume,
    Workdir,
    parse_duration,
)
from lamina.errors import DockerfileSyntaxError

__all__ = ["DIRECTIVES", "Node", "ParsedText", "parse", "parse_nodes"]

DIRECTIVES = frozenset({"syntax", "escape", "check"})
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WS = re.compile(r"[\t\v\f\r ]+")  # Go's reWhitespace: no newline, since lines are already split
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
# Instructions whose line may open heredocs (shell form only).
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_LIST_FORM = frozenset({"ADD", "COPY", "VOLUME"})
_MAYBE_JSON = frozenset({"CMD", "ENTRYPOINT", "RUN", "SHELL"})
_WORDS = frozenset({"EXPOSE", "FROM"})
_STRING = frozenset({"MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"})


class _NotStringArrayError(ValueError):
    """A JSON array with a non-string member: an error, not a fallback to shell form."""


class Node(Struct, frozen=True, kw_only=True):
    """One instruction as written. ``args`` follow BuildKit's AST: the shell-form line as one
    string, the JSON array's strings, whitespace-separated words, or ENV/LABEL keys and values
    alternating (quotes kept). ``sub`` is the trigger of an ONBUILD."""

    keyword: str  # upper-case
    flags: tuple[str, ...]
    args: tuple[str, ...]
    json: bool
    original: str
    line: int
    end_line: int
    column: int
    heredocs: tuple[Heredoc, ...] = ()
    sub: Node | None = None
    flag_positions: tuple[tuple[int, int], ...] = ()
    args_position: tuple[int, int] = (0, 0)


class ParsedText(Struct, frozen=True, kw_only=True):
    directives: tuple[tuple[str, str], ...]
    escape: str
    nodes: tuple[Node, ...]
    last_line: int
    warnings: tuple[str, ...] = ()


class _Locator:
    """Maps offsets in a logical (continuation-joined) line to physical ``(line, column)``."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.places: list[tuple[int, int]] = []

    def add(self, offset: int, line: int, column0: int) -> None:
        self.starts.append(offset)
        self.places.append((line, column0))

    def at(self, offset: int) -> tuple[int, int]:
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        line, column0 = self.places[i]
        return line, column0 + (offset - self.starts[i]) + 1


def _is_comment(raw: str) -> bool:
    return raw.lstrip().startswith("#")


def _continues(text: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing escape (plus blanks); an escaped escape does not continue the line."""
    e = re.escape(escape)
    m = re.search(rf"(?<!{e}){e}[ \t]*$", text)
    return (text[: m.start()], True) if m else (text, False)


def _parse_json(rest: str) -> list[str] | None:
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_reject)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArrayError(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


def _reject(name: str) -> None:
    # Go's encoding/json has no NaN/Infinity: such text is not JSON, so the shell form applies.
    raise ValueError(name)


def _extract_flags(text: str, base: int) -> tuple[list[str], list[int], int]:
    """Leading ``--flag[=value]`` words (quotes removed, ``\\`` escapes); ``--`` ends them.

    Returns the flags, their offsets and the offset where the arguments begin.
    """
    flags: list[str] = []
    offsets: list[int] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if not text.startswith("--", pos):
            return flags, offsets, base + pos
        start = pos
        word, quote = "", ""
        while pos < n and (quote or not text[pos].isspace()):
            ch = text[pos]
            if not quote and ch in "'\"":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                if ch == "\\" and pos + 1 < n:
                    pos += 1
                    ch = text[pos]
                if ch != "\\" or pos + 1 < n:
                    word += ch
            pos += 1
        if word == "--":
            while pos < n and text[pos].isspace():
                pos += 1
            return flags, offsets, base + pos
        flags.append(word)
        offsets.append(base + start)


def _heredocs_in(line: str) -> list[tuple[str, int, bool, bool]]:
    """The heredoc openers of a line: (name, fd, chomp, expand), in order."""
    found = []
    for word in lex_raw_words(line):
        m = _HEREDOC.match(word)
        if m is None or not m.group(3):
            continue
        try:
            plain = unquote_word(m.group(3))
        except DockerfileSyntaxError:
            continue
        if len(plain) != 1:
            continue
        raw = lex_raw_words(m.group(3))
        quotes = sum(w.count("'") + w.count('"') for w in raw)
        expand = quotes == plain[0].count("'") + plain[0].count('"')
        found.append((plain[0], int(m.group(1) or "0"), m.group(2) == "-", expand))
    return found


def _node(
    line: str, locator: _Locator, *, start_line: int, end_line: int, escape: str, base: int = 0
) -> Node:
    """One node from a logical line (BuildKit ``newNodeFromLine``)."""
    stripped = line.strip()
    lead = len(line) - len(line.lstrip())
    parts = _WS.split(stripped, maxsplit=1)
    keyword = parts[0].upper()
    column = locator.at(base + lead)[1]
    flags: list[str] = []
    offsets: list[int] = []
    rest = ""
    rest_at = base + lead + len(parts[0])
    if len(parts) == 2:
        after = base + lead + stripped.index(parts[1], len(parts[0]))
        flags, offsets, rest_at = _extract_flags(parts[1], after)
        rest = line[rest_at - base :].strip()
    args_line, args_column = locator.at(rest_at)
    args: list[str] = []
    is_json = False
    sub: Node | None = None
    try:
        if keyword in _MAYBE_JSON or keyword in _LIST_FORM:
            parsed = _parse_json(rest) if rest else None
            if parsed is not None:
                args, is_json = parsed, True
            elif keyword in _LIST_FORM:
                args = _WS.split(rest) if rest else []
            elif rest:
                args = [rest]
        elif keyword == "HEALTHCHECK" and rest:
            kind = re.split(r"\s", rest, maxsplit=1)[0]
            tail = rest[len(kind) :].lstrip()
            parsed = _parse_json(tail) if tail else None
            is_json = parsed is not None
            args = [kind, *(parsed if parsed is not None else [tail] if tail else [])]
        elif keyword in _WORDS:
            args = _WS.split(rest) if rest else []
        elif keyword in _STRING:
            args = [rest] if rest else []
        elif keyword in ("ENV", "LABEL") and rest:
            pairs = split_key_values(rest, escape=escape, line=args_line)
            args = [x for pair in pairs for x in pair]
        elif keyword == "ARG":
            args = split_words(rest, escape=escape)
        elif keyword == "ONBUILD" and rest:
            sub = _node(
                rest, locator, start_line=start_line, end_line=end_line, escape=escape, base=rest_at
            )
            args = [sub.original]
    except _NotStringArrayError as exc:
        raise DockerfileSyntaxError(str(exc), line=args_line, column=args_column) from None
    except DockerfileSyntaxError as exc:
        raise DockerfileSyntaxError(
            str(exc).partition(": ")[2], line=args_line, column=args_column
        ) from None
    return Node(
        keyword=keyword,
        flags=tuple(flags),
        args=tuple(args),
        json=is_json,
        original=line,
        line=start_line,
        end_line=end_line,
        column=column,
        sub=sub,
        flag_positions=tuple(locator.at(o) for o in offsets),
        args_position=(args_line, args_column),
    )


def parse_nodes(text: str) -> ParsedText:
    """Split Dockerfile text into nodes: directives, continuations, comments, heredocs."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\0" in text:  # not text; and no path, argument or environment can hold a NUL
        before = text[: text.index("\0")]
        raise DockerfileSyntaxError(
            "a NUL character",
            line=before.count("\n") + 1,
            column=len(before.rpartition("\n")[2]) + 1,
        )
    # Only "\n" ends a line, as for Go's bufio.Scanner: str.splitlines would also split on
    # \v, \f and U+2028, which are ordinary characters in a Dockerfile.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    escape = "\\"
    directives: dict[str, str] = {}
    directives_done = False
    nodes: list[Node] = []
    empty_continued: list[str] = []  # lines continued across a blank line (docker warns)
    i = 0

    def physical(index: int) -> str:
        return lines[index].removesuffix("\r")

    def directive(token: str, line_no: int) -> None:
        nonlocal directives_done, escape
        if directives_done:
            return
        m = _DIRECTIVE.match(token)
        key = m.group(1).lower() if m else ""
        if m is None or key not in DIRECTIVES:
            directives_done = True
            return
        if key in directives:
            raise DockerfileSyntaxError(
                f"only one {key} parser directive can be used", line=line_no, column=1
            )
        directives[key] = m.group(2)
        if key == "escape":
            if m.group(2) not in ("\\", "`"):
                raise DockerfileSyntaxError(
                    f"invalid escape token {m.group(2)!r}: use ` or \\", line=line_no, column=1
                )
            escape = m.group(2)

    while i < len(lines):
        raw = physical(i)
        i += 1
        token = raw.lstrip()
        directive(token, i)
        start_line = i
        locator = _Locator()
        locator.add(0, i, len(raw) - len(token))
        body = "" if _is_comment(token) else token
        body, more = _continues(body, escape)
        if not more and not body:
            continue
        buf = body
        blank_inside = False
        while more and i < len(lines):
            raw = physical(i)
            i += 1
            directive(raw, i)
            if _is_comment(raw):
                continue  # comments and blank lines inside a continuation are dropped
            if not raw.strip():
                blank_inside = True
                continue
            piece, more = _continues(raw, escape)
            locator.add(len(buf), i, 0)
            buf += piece
        if blank_inside:
            empty_continued.append(buf)
        node = _node(buf, locator, start_line=start_line, end_line=i, escape=escape)
        if node.keyword in _HEREDOC_KEYWORDS and not node.json and "<<" in buf:
            docs: list[Heredoc] = []
            original = node.original
            for name, fd, chomp, expand in _heredocs_in(buf):
                content: list[str] = []
                terminated = False
                while i < len(lines):
                    candidate = physical(i)
                    i += 1
                    if (candidate.lstrip("\t") if chomp else candidate) == name:
                        terminated = True
                        break
                    content.append(candidate + "\n")
                if not terminated:
                    raise DockerfileSyntaxError(
                        f"unterminated heredoc {name!r} (opened here)",
                        line=start_line,
                        column=node.column,
                    )
                body_text = "".join(content)
                original += "\n" + body_text + name
                docs.append(
                    Heredoc(
                        name=name,
                        content=_LEADING_TABS.sub("", body_text) if chomp else body_text,
                        expand=expand,
                        chomp=chomp,
                        file_descriptor=fd,
                    )
                )
            if docs:
                node = msgspec.structs.replace(
                    node, heredocs=tuple(docs), original=original + "\n", end_line=i
                )
        nodes.append(node)
    warnings = [
        f"[WARNING]: Empty continuation line found in:\n    {line}" for line in empty_continued
    ]
    if warnings:  # docker 20.10's words, printed before the first step
        warnings.append(
            "[WARNING]: Empty continuation lines will become errors in a future release."
        )
    return ParsedText(
        directives=tuple(directives.items()),
        escape=escape,
        nodes=tuple(nodes),
        last_line=len(lines),
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------------------
# Typed instructions (BuildKit ``instructions/parse.go``)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_ONBUILD_FORBIDDEN = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
_BOOL_MOUNT_KEYS = frozenset({"readonly", "ro", "readwrite", "rw", "required"})


class _Common(TypedDict):
    line: int
    end_line: int
    column: int
    original: str
    flags: tuple[str, ...]


class _Flags:
    """The ``--name[=value]`` flags of one node; whatever is not asked for is an error."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.seen: dict[str, list[tuple[str | None, tuple[int, int]]]] = {}
        for text, where in zip(node.flags, node.flag_positions, strict=True):
            name, eq, value = text[2:].partition("=")
            self.seen.setdefault(name, []).append((value if eq else None, where))
        self.known: set[str] = set()

    def error(self, message: str, where: tuple[int, int] | None = None) -> DockerfileSyntaxError:
        line, column = where or self.node.args_position
        return DockerfileSyntaxError(f"{self.node.keyword}: {message}", line=line, column=column)

    def _get(self, name: str, *, many: bool = False) -> list[tuple[str | None, tuple[int, int]]]:
        self.known.add(name)
        found = self.seen.get(name, [])
        if len(found) > 1 and not many:
            raise self.error(f"duplicate flag specified: --{name}", found[1][1])
        return found

    def string(self, name: str) -> str | None:
        found = self._get(name)
        if not found:
            return None
        value, where = found[0]
        if value is None:
            raise self.error(f"missing a value on flag: --{name}", where)
        return value

    def where(self, name: str) -> tuple[int, int]:
        """Where flag ``name`` (first occurrence) was written; the arguments if absent."""
        found = self.seen.get(name)
        return found[0][1] if found else self.node.args_position

    def strings(self, name: str) -> tuple[str, ...]:
        values = []
        for value, where in self._get(name, many=True):
            if value is None:
                raise self.error(f"missing a value on flag: --{name}", where)
            values.append(value)
        return tuple(values)

    def boolean(self, name: str) -> bool | None:
        found = self._get(name)
        if not found:
            return None
        value, where = found[0]
        if value is not None and value.lower() not in ("true", "false"):
            raise self.error(f"expecting boolean value for flag --{name}, not: {value}", where)
        return value is None or value.lower() == "true"

    def finish(self) -> None:
        for name, found in self.seen.items():
            if name not in self.known:
                raise self.error(f"unknown flag: --{name}", found[0][1])


def _command(node: Node) -> Command:
    if node.json:
        return Command(form=Form.EXEC, args=node.args)
    return Command(form=Form.SHELL, args=(" ".join(node.args),) if node.args else ())


def _mount(text: str, flags: _Flags, where: tuple[int, int]) -> Mount:
    fields: dict[str, Any] = {}
    kind = MountType.BIND
    for item in next(csv.reader([text])) if text else []:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq and key not in _BOOL_MOUNT_KEYS:
            raise flags.error(f"invalid field {item!r}: must be a key=value pair", where)
        try:
            if key == "type":
                kind = MountType(value.lower())
            elif key in ("target", "dst", "destination"):
                fields["target"] = value
            elif key in ("source", "src"):
                fields["source"] = value
            elif key in ("from", "id", "sharing", "size", "env"):
                if key == "sharing" and value not in ("shared", "private", "locked"):
                    raise ValueError(value)
                fields["from_" if key == "from" else key] = value
            elif key in ("mode", "uid", "gid"):
                fields[key] = int(value, 8 if key == "mode" else 10)
            elif key in _BOOL_MOUNT_KEYS:
                truth = not eq or {"true": True, "false": False}[value.lower()]
                if key == "required":
                    fields["required"] = truth
                else:
                    fields["readonly"] = truth if key in ("readonly", "ro") else not truth
            else:
                raise flags.error(f"unexpected key {key!r} in --mount={text}", where)
        except (ValueError, KeyError):
            raise flags.error(f"invalid value for {key!r} in --mount={text}", where) from None
    mount = Mount(type=kind, **fields)
    if kind in (MountType.BIND, MountType.CACHE, MountType.TMPFS) and not mount.target:
        raise flags.error(f"--mount type={kind.value} requires a target", where)
    if kind is MountType.SECRET and not (mount.id or mount.target):
        raise flags.error("--mount type=secret requires an id or a target", where)
    return mount


def _duration(flags: _Flags, name: str) -> int:
    text = flags.string(name)
    if not text:
        return 0
    try:
        value = parse_duration(text)
    except ValueError:
        raise flags.error(f"invalid duration --{name}={text}", flags.where(name)) from None
    if 0 < value < 1_000_000 or value < 0:  # Docker's container.MinimumDuration is 1ms
        raise flags.error(f"--{name} cannot be less than 1ms", flags.where(name))
    return value


def _typed(node: Node) -> Instruction:
    flags = _Flags(node)
    common = _Common(
        line=node.line,
        end_line=node.end_line,
        column=node.column,
        original=node.original,
        flags=node.flags,
    )
    args = node.args
    key = node.keyword

    def need(count: int | None = None, *, at_least: int = 1) -> None:
        if count is not None and len(args) != count:
            raise flags.error(f"requires exactly {count} argument(s)")
        if len(args) < at_least:
            raise flags.error("requires at least one argument")

    result: Instruction
    if key == "FROM":
        platform = flags.string("platform")
        if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
            raise flags.error("requires either one or three arguments: FROM image [AS name]")
        name = args[2].lower() if len(args) == 3 else None
        if name is not None and not _STAGE_NAME.match(name):
            raise flags.error(f"invalid stage name {args[2]!r}: it must match [a-z][a-z0-9-_.]*")
        result = From(**common, image=args[0], platform=platform, stage_name=name)
    elif key == "RUN":
        mounts = tuple(
            _mount(value, flags, where)
            for value, (_, where) in zip(
                flags.strings("mount"), flags.seen.get("mount", []), strict=True
            )
        )
        network = flags.string("network")
        security = flags.string("security")
        try:
            net = NetworkMode(network) if network is not None else None
        except ValueError:
            raise flags.error(
                f"--network must be default, none or host, not {network!r}", flags.where("network")
            ) from None
        if security not in (None, "insecure", "sandbox"):
            raise flags.error(
                f"--security must be insecure or sandbox, not {security!r}", flags.where("security")
            )
        need(at_least=0 if node.json else 1)
        result = Run(
            **common,
            command=_command(node),
            heredocs=node.heredocs,
            mounts=mounts,
            network=net,
            security=security,
            devices=flags.strings("device"),
        )
    elif key in ("CMD", "ENTRYPOINT"):
        if key == "CMD":
            result = Cmd(**common, command=_command(node))
        else:
            result = Entrypoint(**common, command=_command(node))
    elif key == "SHELL":
        if not node.json:
            raise flags.error('requires the arguments in JSON form: SHELL ["executable", "param"]')
        need()
        result = Shell(**common, args=args)
    elif key in ("ENV", "LABEL"):
        need()
        pairs = tuple(zip(args[::2], args[1::2], strict=True))
        if any(not k for k, _ in pairs):
            raise flags.error("names can not be blank")
        result = Env(**common, pairs=pairs) if key == "ENV" else Label(**common, pairs=pairs)
    elif key in ("MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL"):
        need(1)
        if key == "MAINTAINER":
            result = Maintainer(**common, name=args[0])
        elif key == "USER":
            result = User(**common, user=args[0])
        elif key == "WORKDIR":
            result = Workdir(**common, path=args[0])
        else:
            result = Stopsignal(**common, signal=args[0])
    elif key == "EXPOSE":
        need()
        result = Expose(**common, ports=args)
    elif key == "VOLUME":
        need()
        if any(not p.strip() for p in args):
            raise flags.error("a volume path can not be an empty string")
        result = Volume(**common, paths=args, form=Form.EXEC if node.json else Form.SHELL)
    elif key in ("COPY", "ADD"):
        result = _copy(node, flags, common)
    elif key == "ARG":
        need()
        decls = []
        for word in args:
            name, eq, default = word.partition("=")
            if not name:
                raise flags.error("ARG names can not be blank")
            decls.append(ArgDecl(name=name, default=default if eq else None))
        result = Arg(**common, args=tuple(decls))
    elif key == "ONBUILD":
        if node.sub is None:
            raise flags.error("requires at least one argument")
        if node.sub.keyword in _ONBUILD_FORBIDDEN:
            line, column = node.args_position
            what = (
                "chaining ONBUILD via ONBUILD ONBUILD"
                if node.sub.keyword == "ONBUILD"
                else node.sub.keyword
            )
            raise DockerfileSyntaxError(
                f"ONBUILD: {what} isn't allowed as a trigger", line=line, column=column
            )
        trigger = _typed(node.sub)
        expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
        result = Onbuild(**common, expression=expression, trigger=trigger)
    elif key == "HEALTHCHECK":
        result = _healthcheck(node, flags, common)
    else:
        raise DockerfileSyntaxError(
            f"unknown instruction: {node.keyword}", line=node.line, column=node.column
        )
    flags.finish()
    return result


def _copy(node: Node, flags: _Flags, common: _Common) -> Instruction:
    if len(node.args) < 2:
        raise flags.error("requires at least two arguments: <source>... <destination>")
    docs = {doc.name: doc for doc in node.heredocs}
    *sources, dest = node.args
    if _HEREDOC.match(dest) and not node.json:
        raise flags.error("a heredoc can not be the destination")
    paths: list[str] = []
    inline: list[Heredoc] = []
    for src in sources:
        m = _HEREDOC.match(src) if docs else None
        words = unquote_word(m.group(3)) if m and m.group(3) else []
        if len(words) == 1 and words[0] in docs:
            inline.append(docs[words[0]])
        else:
            paths.append(src)
    chown, chmod = flags.string("chown"), flags.string("chmod")
    link, exclude = bool(flags.boolean("link")), flags.strings("exclude")
    if node.keyword == "COPY":
        return Copy(
            **common,
            sources=tuple(paths),
            dest=dest,
            inline=tuple(inline),
            chown=chown,
            chmod=chmod,
            link=link,
            exclude=exclude,
            from_=flags.string("from"),
            parents=bool(flags.boolean("parents")),
        )
    return Add(
        **common,
        sources=tuple(paths),
        dest=dest,
        inline=tuple(inline),
        chown=chown,
        chmod=chmod,
        link=link,
        exclude=exclude,
        checksum=flags.string("checksum"),
        keep_git_dir=bool(flags.boolean("keep-git-dir")),
        unpack=flags.boolean("unpack"),
    )


def _healthcheck(node: Node, flags: _Flags, common: _Common) -> Instruction:
    if not node.args:
        raise flags.error("requires at least one argument")
    kind, rest = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if rest or node.flags:
            raise flags.error("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**common, test=("NONE",))
    if kind != "CMD":
        raise flags.error(f"unknown type {node.args[0]!r} in HEALTHCHECK (try CMD)")
    if not rest:
        raise flags.error("missing command after HEALTHCHECK CMD")
    retries_text = flags.string("retries")
    try:
        retries = int(retries_text) if retries_text else 0
    except ValueError:
        raise flags.error(
            f"--retries must be an integer, not {retries_text!r}", flags.where("retries")
        ) from None
    if retries_text and retries < 1:  # docker 20.10: "--retries must be at least 1 (not 0)"
        raise flags.error(f"--retries must be at least 1 (not {retries})", flags.where("retries"))
    return Healthcheck(
        **common,
        test=("CMD", *rest) if node.json else ("CMD-SHELL", " ".join(rest)),
        interval_ns=_duration(flags, "interval"),
        timeout_ns=_duration(flags, "timeout"),
        start_period_ns=_duration(flags, "start-period"),
        start_interval_ns=_duration(flags, "start-interval"),
        retries=retries,
    )


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile into stages of typed instructions.

    Only parser directives, comments and ARGs may precede the first FROM.
    """
    parsed = parse_nodes(text)
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    body: list[Instruction] = []
    named: dict[str, int] = {}  # stage name -> the line of its FROM
    for node in parsed.nodes:
        instruction = _typed(node)
        if isinstance(instruction, From):
            name = instruction.stage_name
            if name is not None and name in named:
                # Docker: "<name> stage name already used"; a later FROM <name> or
                # COPY --from=<name> could only guess which stage was meant.
                raise DockerfileSyntaxError(
                    f"stage name {name!r} is already used by the stage at line {named[name]}",
                    line=node.line,
                    column=node.column,
                )
            if name is not None:
                named[name] = node.line
            if current is not None:
                stages.append(Stage(index=len(stages), from_=current, instructions=tuple(body)))
            current, body = instruction, []
        elif current is not None:
            body.append(instruction)
        elif isinstance(instruction, Arg):
            global_args.append(instruction)
        else:
            raise DockerfileSyntaxError(
                f"{node.keyword} before FROM: only parser directives, comments and ARG may "
                "precede the first FROM",
                line=node.line,
                column=node.column,
            )
    if current is None:
        raise DockerfileSyntaxError(
            "no FROM instruction: a Dockerfile needs at least one build stage",
            line=max(parsed.last_line, 1),
            column=1,
        )
    stages.append(Stage(index=len(stages), from_=current, instructions=tuple(body)))
    return Dockerfile(
        directives=parsed.directives,
        escape=parsed.escape,
        global_args=tuple(global_args),
        stages=tuple(stages),
        warnings=parsed.warnings,
    )
