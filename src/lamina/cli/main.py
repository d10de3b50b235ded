"""The ``lamina`` command: global options, the command table, and error handling.

Each command parses its flags, makes one engine call and renders the result. A call imports
only the module that defines the command it names and builds only that command's parser, so
``lamina --version`` imports no command module and ``lamina rm C`` only the container verbs;
``lamina --help`` (and a command name lamina does not know) builds them all, to list them.
Heavy modules (the engine, rich) are imported inside commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
from collections.abc import Iterable, Sequence
from pathlib import Path

from lamina import __version__
from lamina.cli.command import Command, Parser, dir_path
from lamina.cli.context import Aborted, Context, print_error
from lamina.cli.startup import deferred, stand_ins
from lamina.errors import LaminaError

EXIT_USAGE = 2
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

DRIVERS = ("overlay2", "overlay", "vfs")
LOG_LEVELS = ("debug", "info", "warning", "error")

GROUPS: dict[str, str] = {
    "container": "Manage containers.",
    "image": "Manage images.",
    "system": "Manage the store.",
    "volume": "Manage volumes.",
}


def _under(group: str, verbs: dict[str, str]) -> dict[str, str]:
    return {f"{group} {name}": where for name, where in verbs.items()}


_IMAGE_VERBS = {
    **{name: f"images.{name}" for name in ("layers", "inspect", "tag", "history")},
    "import": "images.import_",
    # Docker's image verbs also live under `image` (docker image load, ...).
    **{name: f"transfer.{name}" for name in ("load", "save", "copy")},
}
_CONTAINER_VERBS = {
    **{
        name: f"containers.{name}"
        for name in ("create", "run", "start", "stop", "kill", "rm", "logs")
    },
    **{name: f"container_files.{name}" for name in ("mount", "umount")},
    **{name: f"containers.{name}" for name in ("wait", "restart", "rename", "top")},
    **{name: f"containers.{name}" for name in ("pause", "unpause", "stats")},
    **{name: f"container_files.{name}" for name in ("diff", "commit", "export", "cp")},
    "exec": "containers.exec_",
    "update": "container_update.update",
    "attach": "attach.attach",
}

# Every command, by the words that name it, and where it is defined: MODULE.ATTRIBUTE under
# lamina.cli.commands (tests/cli checks that each entry is a Command and each Command has one).
COMMANDS: dict[str, str] = {
    **_IMAGE_VERBS,
    "images": "images.images",
    "rmi": "images.rmi",
    **_CONTAINER_VERBS,
    "ps": "ps.ps",
    **{name: f"forensics.{name}" for name in ("trace", "cat", "extract", "secrets", "waste")},
    **{name: f"forensics.{name}" for name in ("tree", "report")},
    "info": "system.info",
    "verify": "system.verify",
    "build": "build.build",
    **_under(
        "image",
        {
            **_IMAGE_VERBS,
            "ls": "images.images",
            "build": "build.build",
            "rm": "images.rmi",
            "mount": "images.image_mount",
            "umount": "images.image_umount",
            "prune": "images.image_prune",
            "export": "images.image_export",
            "diff": "forensics.image_diff",
        },
    ),
    **_under(
        "container",
        {
            **_CONTAINER_VERBS,
            "ls": "ps.ps",
            "inspect": "containers.container_inspect",
            "prune": "containers.container_prune",
        },
    ),
    **_under(
        "volume",
        {
            **{name: f"volumes.{name}" for name in ("create", "ls", "inspect", "rm", "prune")},
            "export": "volumes.export",
            "import": "volumes.import_",
        },
    ),
    **_under(
        "system",
        {
            "info": "system.info",
            "verify": "system.verify",
            "df": "system.df",
            "prune": "system.prune",
        },
    ),
}


def load_command(words: str) -> Command:
    """The command named ``words`` (``"rmi"``, ``"image ls"``), its module imported."""
    import importlib

    _import_msgspec()
    module, _, name = COMMANDS[words].partition(".")
    command = getattr(importlib.import_module(f"lamina.cli.commands.{module}"), name)
    assert isinstance(command, Command), words
    return command


def _import_msgspec() -> None:
    """Import msgspec (lamina's records are its Structs) without what it loads but lamina
    never has it use, ~7 ms of every CLI start:

    - ``typing_extensions``, whose ``get_type_hints`` msgspec prefers when it is installed
      (mypy brings it); it imports ``inspect``. On Python >= 3.11 ``typing``'s own versions
      are the same, and lamina never asks msgspec for type hints (it decodes no JSON into
      types), so importing it fails while msgspec loads;
    - ``platform`` (imported by ``uuid``, which msgspec loads to know its type), which
      compiles a dozen regular expressions to read version strings. ``uuid`` asks it only
      for ``system()``: a stand-in answers that from ``os.uname()``;
    - the modules msgspec's ``__init__`` imports for its namespace alone -- ``msgspec.inspect``,
      the TOML, YAML and MessagePack codecs, and ``textwrap`` (for JSON-schema docstrings;
      ~2 ms together): they are bound lazily (:func:`lamina.cli.startup.deferred`) and load in
      full at their first use.

    The stand-ins are restored afterwards (:func:`lamina.cli.startup.stand_ins`).
    """
    if "msgspec" in sys.modules:
        return
    modules: dict[str, types.ModuleType | None] = {"typing_extensions": None}
    if "uuid" not in sys.modules and "platform" not in sys.modules:
        platform = types.ModuleType("platform")
        platform.system = lambda: os.uname().sysname  # type: ignore[attr-defined]
        modules["platform"] = platform
    lazy = ("msgspec.inspect", "msgspec.toml", "msgspec.yaml", "msgspec.msgpack", "textwrap")
    with stand_ins(modules), deferred(lazy):
        import msgspec  # noqa: F401


# Global options that take a value: skipped with it when looking for the command's name.
_GLOBAL_VALUE_OPTIONS = ("--root", "-s", "--storage-driver", "--log-level")


def _named(args: Sequence[str]) -> tuple[list[str], str | None, str | None]:
    """The global options, the command word and the word after it, as the parser will find
    them: the command is the first argument that is neither a global option nor such an
    option's value."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if a in _GLOBAL_VALUE_OPTIONS:
            i += 2
        elif a.startswith("-") and a != "-":
            i += 1
        else:
            after = [x for x in args[i + 1 :] if not x.startswith("-")]
            return list(args[:i]), a, after[0] if after else None
    return list(args[:i]), None, None


def _root_parser() -> Parser:
    p = Parser(prog="lamina", description="lamina: a daemonless container storage engine.")
    p.add_argument(
        "-v",
        "--version",
        action="version",
        version=f"lamina, version {__version__}",
        help="Show the version and exit.",
    )
    p.add_argument(
        "--root",
        dest="store_root",
        type=lambda value: Path(dir_path(value)),
        default=os.environ.get("LAMINA_ROOT") or None,
        metavar="DIRECTORY",
        help="Store root (default: $LAMINA_ROOT, else /var/lib/lamina as root).",
    )
    p.add_argument(
        "-s",
        "--storage-driver",
        dest="storage_driver",
        choices=DRIVERS,
        default=os.environ.get("LAMINA_STORAGE_DRIVER") or None,
        help="Storage driver (default: overlay2 where the kernel can mount it, else vfs).",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="(default: %(default)s)",
    )
    p.set_defaults(_parser=p, _command=None)
    return p


def _parser(args: Sequence[str], *, everything: bool = False) -> Parser:
    """The root parser with the parsers of the command ``args`` name, or of every command when
    it names none lamina knows (its help lists them; argparse's error names the choices)."""
    root = _root_parser()
    commands = root.add_subparsers(title="commands", metavar="COMMAND", prog="lamina")
    options, word, after = _named(args)
    if not everything and word is None and not {"-h", "--help"} & set(args):
        return root  # --version, or no command: nothing to load (yet)
    if everything or {"-h", "--help"} & set(options):
        word = None  # the help lists every command
    if word in COMMANDS:
        _add(commands, word, word)
    elif word in GROUPS:
        sub = f"{word} {after}"
        _add_group(commands, word, [sub] if sub in COMMANDS else _members(word))
    else:
        tops = [w for w in COMMANDS if " " not in w]
        for name in sorted([*tops, *GROUPS]):
            if name in GROUPS:
                _add_group(commands, name, _members(name))
            else:
                _add(commands, name, name)
    return root


def _members(group: str) -> list[str]:
    return sorted(w for w in COMMANDS if w.startswith(group + " "))


def _add(commands: argparse._SubParsersAction[Parser], name: str, words: str) -> None:
    command = load_command(words)
    p = commands.add_parser(
        name, help=command.summary, description=command.help, usage=command.usage
    )
    command.add_arguments(p)
    p.set_defaults(_parser=p, _command=command)


def _add_group(
    commands: argparse._SubParsersAction[Parser], group: str, members: Iterable[str]
) -> None:
    p = commands.add_parser(group, help=GROUPS[group], description=GROUPS[group])
    p.set_defaults(_parser=p)
    verbs = p.add_subparsers(title="commands", metavar="COMMAND", prog=f"lamina {group}")
    for words in members:
        _add(verbs, words.partition(" ")[2], words)


def _configure_logging(level: str) -> None:
    # lamina itself does not log; libraries (libarchive) do. Importing logging costs ~10 ms
    # of every start, so at the default level it is configured only if already loaded: a
    # library loaded later logs its warnings through logging's last-resort handler (stderr,
    # WARNING and up), without the "WARNING: " prefix.
    if level != "warning" or "logging" in sys.modules:
        import logging

        logging.basicConfig(
            level=getattr(logging, level.upper()),
            format="%(levelname)s: %(message)s",
            stream=sys.stderr,
        )


def parse(args: list[str]) -> argparse.Namespace:
    """Parse a command line (``-H=false`` read as Go reads it: ``Parser._go_style_flags``): the
    global options as ``store_root``, ``storage_driver`` and ``log_level``, the command's own
    arguments, the :class:`Command` as ``_command`` (None when a group or nothing was named)
    and the innermost parser reached as ``_parser``. Raises UsageError (after printing the
    usage) on bad input."""
    parser = _parser(args)
    ns, extra = parser.parse_known_args(args)
    if extra:
        # Reported by the command's parser, whose usage is the one that helps.
        ns._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if ns.storage_driver is not None and ns.storage_driver not in DRIVERS:
        parser.error(
            f"$LAMINA_STORAGE_DRIVER: invalid choice: {ns.storage_driver!r} "
            f"(choose from {', '.join(map(repr, DRIVERS))})"
        )
    return ns


def _run(args: list[str]) -> int:
    ns = parse(args)
    command: Command | None = ns._command
    if command is None:
        # `lamina` or `lamina image` alone: the help, as a usage error (status 2). The root
        # parser was built without the commands, which the help lists.
        shown = ns._parser if ns._parser.prog != "lamina" else _parser(args, everything=True)
        shown.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(ns.log_level)
    ctx = Context(root=ns.store_root, driver=ns.storage_driver)
    try:
        command.run(ctx, ns)
    finally:
        ctx.close()
    return ctx.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status instead of exiting (tests call this in-process)."""
    try:
        return _run(list(argv) if argv is not None else sys.argv[1:])
    except LaminaError as exc:
        print_error(exc)
        return exc.exit_status
    except Aborted:
        print("Aborted!", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (KeyboardInterrupt, EOFError):
        # The blank line closes the terminal's ``^C`` echo.
        print("\nAborted!", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (`lamina images | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as exc:
        # --help and --version print and exit 0.
        return exc.code if isinstance(exc.code, int) else 1
    except Exception:
        # Anything that is not a LaminaError is a bug in lamina: show it whole.
        import traceback

        traceback.print_exc()
        print("error: internal error (a bug in lamina; please report it)", file=sys.stderr)
        return EXIT_BUG
