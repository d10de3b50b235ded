"""A command as the CLI's table knows it: its argparse declarations and its handler.

::

    @command(
        arg("names", nargs="+", metavar="NAME"),
        arg("-f", "--force", action="store_true", help="..."),
    )
    def rmi(ctx: Context, args: Namespace) -> None:
        \"\"\"Remove images (untag by name; delete when no name is left).\"\"\"

The docstring is the command's help, and its first sentence (shortened to one line) what
``lamina --help`` lists. A positional's metavar is its name upper-cased, an option's value's
the option's long name (``--input INPUT``). Parsers are built only for the command a call
names (:mod:`lamina.cli.main`), so declaring a command costs next to nothing at start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from lamina.cli.context import Context
from lamina.errors import UsageError

Handler = Callable[[Context, argparse.Namespace], None]

# argparse lists commands from column 24 of a 78-column help (COLUMNS=80).
_SUMMARY_WIDTH = 54


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` reads it ($COLUMNS, then stdout's
    terminal, then 80), without importing shutil (with bz2 and lzma) at every start."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter with its width given: left to itself it asks shutil, and
    ``add_argument`` makes one, so every parser would import shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, _columns() - 2 if width is None else width
        )


class Parser(argparse.ArgumentParser):
    """argparse as every lamina parser uses it: no abbreviated long options, descriptions kept
    as written, and lamina's error report (the usage, then the ``error:`` and ``hint:`` lines
    that :func:`lamina.cli.main.main` prints; exit status 2)."""

    _intermixing = False

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(allow_abbrev=False, add_help=False, **kwargs)
        self.add_argument("-h", "--help", action="help", help="Show this message and exit.")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Options may follow positionals (``rm A -f B``), as with docker's and click's
        parsers. argparse's intermixed parsing does that, except for a parser with subcommands
        or a REMAINDER (``run IMAGE CMD...``: there options end at IMAGE), and it loses ``--``
        (``rm -- -x``), so a command line with ``--`` is parsed the plain way."""
        positionals = [a for a in self._actions if not a.option_strings]
        if not self._intermixing:
            args = self._go_style_flags(
                list(sys.argv[1:] if args is None else args),
                stop_at_positional=any(
                    a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in positionals
                ),
            )
        if (
            self._intermixing
            or "--" in (sys.argv[1:] if args is None else args)
            or any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in positionals)
        ):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls parse_known_args
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def _go_style_flags(self, args: list[str], *, stop_at_positional: bool) -> list[str]:
        """Docker's Go flag parser reads ``-t=x`` as ``-t x``; argparse would take ``=x`` as
        the value. A bool flag (``type=boolean``) is true when bare and takes a value only
        after "=", as Go's. Only this parser's own short options are split, and never
        past ``--`` or, for ``run IMAGE CMD...`` and the command groups, past the first
        positional: what follows belongs to the container's command (``grep -e=x``) or to a
        subcommand's parser, which splits its own."""
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                return out + args[i:]
            name, eq, value = token.partition("=")
            flag = self._option_string_actions.get(name)
            if flag is not None and flag.type is boolean:
                # A Go bool flag takes its value only after "=" (``-H=false``); bare, it is
                # true and the next word is not its value (``history -H IMAGE``).
                out.append(token if eq else token + "=true")
                i += 1
                continue
            if eq and isinstance(flag, argparse._StoreTrueAction):
                # Every Go bool flag takes "=value": ``run --rm=false``, ``-d=true``.
                try:
                    if boolean(value):
                        out.append(name)
                except argparse.ArgumentTypeError:
                    self.error(f"invalid argument {value!r} for {name}: not a boolean")
                i += 1
                continue
            if token[2:3] == "=" and token[1:2] != "-" and token[:2] in self._option_string_actions:
                out += [token[:2], token[3:]]
                i += 1
                continue
            if token.startswith("-") and token != "-":
                out.append(token)
                action = self._option_string_actions.get(token)
                if action is not None and action.nargs != 0 and i + 1 < len(args):
                    out.append(args[i + 1])  # the option's value, whatever it looks like
                    i += 1
                i += 1
                continue
            if stop_at_positional:
                return out + args[i:]
            out.append(token)
            i += 1
        return out

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        exc = UsageError(message)
        exc.hint = f"see '{self.prog} --help'"
        raise exc


# Plain classes rather than msgspec Structs, so that `lamina --version` loads nothing that
# imports msgspec, and rather than typing.NamedTuple, which compiles each string annotation
# into a ForwardRef when the class is made (~0.5 ms of every start).


class Arg:
    """One ``parser.add_argument(*flags, **options)`` call, kept until a parser is built."""

    __slots__ = ("flags", "options")

    def __init__(self, flags: tuple[str, ...], options: dict[str, Any]) -> None:
        self.flags = flags
        self.options = options


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


class Command:
    """A command: its handler (whose docstring is its help), its arguments in help order and,
    when argparse's would mislead, its usage line."""

    __slots__ = ("args", "run", "usage")

    def __init__(self, run: Handler, args: tuple[Arg, ...], usage: str | None = None) -> None:
        self.run = run
        self.args = args
        self.usage = usage

    @property
    def help(self) -> str:
        """The handler's docstring, dedented."""
        return _dedent(self.run.__doc__ or "")

    @property
    def summary(self) -> str:
        """The help's first sentence, on one line of a command list (as click shortened it)."""
        words = self.help.split("\n\n", 1)[0].split()
        out: list[str] = []
        for word in words:
            if len(" ".join([*out, word])) > _SUMMARY_WIDTH - 3:
                return " ".join(out) + "..."
            out.append(word)
            if word.endswith("."):
                break
        return " ".join(out)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for a in self.args:
            options = a.options
            if "metavar" not in options and "choices" not in options:
                if not a.flags[0].startswith("-"):
                    options = {**options, "metavar": a.flags[0].upper()}  # IMAGE, as docker's
                elif options.get("action", "store") in ("store", "append"):
                    # Named by the option, not by its dest: --input INPUT, not INPUT_.
                    name = max(a.flags, key=len).lstrip("-")
                    options = {**options, "metavar": name.upper().replace("-", "_")}
            parser.add_argument(*a.flags, **options)


def command(*args: Arg, usage: str | None = None) -> Callable[[Handler], Command]:
    """Declare a command: its arguments (in help order) and, when argparse's would mislead,
    its usage line (``%(prog)s`` is the command's full name)."""

    def wrap(run: Handler) -> Command:
        return Command(run, args, usage)

    return wrap


class _TargetAndCommand(argparse.Action):
    def __init__(
        self,
        option_strings: list[str],
        dest: str,
        *,
        target: str,
        required_command: bool,
        **kw: Any,
    ) -> None:
        super().__init__(option_strings, dest, **kw)
        self.target = target
        self.required_command = required_command

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        words = list(values or ())
        if words[:1] == ["--"]:
            words = words[1:]
        if not words:
            parser.error(f"the following arguments are required: {self.target.upper()}")
        if self.required_command and len(words) < 2:
            parser.error("the following arguments are required: COMMAND")
        setattr(namespace, self.target, words[0])
        namespace.command = words[1:]


def target_and_command(target: str, *, required_command: bool = False) -> Arg:
    """``TARGET [COMMAND] [ARG...]`` as docker's ``run`` and ``exec`` read it: options end at
    TARGET (or ``--``), and everything after TARGET, options and ``--`` included, is the
    command (``args.command``, a list). Give the command an explicit usage line."""
    return arg(
        "_words",
        nargs=argparse.REMAINDER,
        action=_TargetAndCommand,
        target=target,
        required_command=required_command,
        help=argparse.SUPPRESS,
    )


def _dedent(doc: str) -> str:
    # inspect.cleandoc, without importing inspect (~5 ms) on every start.
    first, _, rest = doc.strip().partition("\n")
    lines = rest.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join([first, *(x[indent:] for x in lines)]).rstrip()


# Argument types. Each raises ArgumentTypeError, which argparse reports as a usage error
# naming the option ("argument -o/--output: file '/' is a directory").

_TRUE = ("1", "true", "t", "yes", "y", "on")
_FALSE = ("0", "false", "f", "no", "n", "off", "")


def boolean(value: str) -> bool:
    """A flag's value as Go and click spell booleans (``-H=false``)."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a valid boolean (true or false)")


def file_path(value: str) -> str:
    """A file to write: a name, not an existing directory, in a directory that exists."""
    if not value:
        raise argparse.ArgumentTypeError("an empty file name")
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"file {value!r} is a directory")
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"directory {parent!r} does not exist")
    return value


def dir_path(value: str) -> str:
    """A path that, if it exists, is a directory ("" is none: not the current dir)."""
    if not value:
        raise argparse.ArgumentTypeError("an empty directory name")
    if os.path.exists(value) and not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"directory {value!r} is a file")
    return value


def existing_path(value: str) -> str:
    if not os.path.exists(value):
        raise argparse.ArgumentTypeError(f"path {value!r} does not exist")
    return value
