"""The ``lamina`` command: global options, error handling, and the command table.

Each command parses its flags, makes one engine call and renders the result. Heavy modules
(the engine, rich) are imported inside commands so ``lamina --version`` starts fast.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from lamina import __version__
from lamina.cli.context import Context, pop_exit_status
from lamina.errors import LaminaError

EXIT_BUG = 70
EXIT_INTERRUPTED = 130


# Commands whose module is loaded alone: the container and volume verbs, where a CLI start
# per call is what users wait for (tests/cli pins this table to the full registration).
QUICK_COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ("create", "run", "start", "stop", "kill", "rm", "ps", "logs", "exec", "mount"),
        "containers",
    ),
    **dict.fromkeys(("umount", "diff", "commit", "export", "cp", "container"), "containers"),
    "volume": "volumes",
}


class _Commands(click.Group):
    """Loads the command modules on first use, so ``lamina --version`` imports none of them
    and a container verb imports only its own module."""

    _loaded = False

    def _load(self) -> None:
        if not self._loaded:
            type(self)._loaded = True
            _register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = QUICK_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            for command in importlib.import_module(f"lamina.cli.commands.{module}").COMMANDS:
                self.add_command(command)
        if cmd_name not in self.commands:
            self._load()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="lamina")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="LAMINA_ROOT",
    help="Store root (default: $LAMINA_ROOT, else /var/lib/lamina as root).",
)
@click.option(
    "--storage-driver",
    "-s",
    "driver",
    envvar="LAMINA_STORAGE_DRIVER",
    type=click.Choice(["overlay2", "overlay", "vfs"]),
    help="Storage driver (default: overlay2 where the kernel can mount it, else vfs).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
@click.pass_context
def cli(ctx: click.Context, root: Path | None, driver: str | None, log_level: str) -> None:
    """lamina: a daemonless container storage engine."""
    # lamina itself does not log; libraries (libarchive) do. Importing logging costs ~10 ms
    # of every start, so at the default level it is configured only if already loaded: a
    # library loaded later logs its warnings through logging's last-resort handler (stderr,
    # WARNING and up), without the "WARNING: " prefix.
    if log_level != "warning" or "logging" in sys.modules:
        import logging

        logging.basicConfig(
            level=getattr(logging, log_level.upper()),
            format="%(levelname)s: %(message)s",
            stream=sys.stderr,
        )
    obj = Context(root=root, driver=driver)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def _register(group: click.Group) -> None:
    from lamina.cli.commands import (
        build,
        containers,
        forensics,
        images,
        system,
        transfer,
        volumes,
    )

    for mod in (images, system, transfer, containers, volumes, forensics, build):
        for command in mod.COMMANDS:
            group.add_command(command)
    # Docker's image verbs also live under `image` (docker image load, ...).
    for command in transfer.COMMANDS:
        images.image.add_command(command)


def _print_error(exc: LaminaError) -> None:
    click.echo(f"error: {exc}", err=True)
    for note in getattr(exc, "__notes__", ()):
        click.echo(f"  {note}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


def _go_style_flags(args: list[str]) -> list[str]:
    """Docker's Go flag parser accepts ``-H=false`` for a short flag; click wants ``-H false``."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        m = re.fullmatch(r"(-[A-Za-z])=(.*)", arg, flags=re.S)
        out.extend(m.groups() if m else (arg,))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status instead of exiting (tests call this in-process)."""
    try:
        cli.main(
            args=_go_style_flags(list(argv) if argv is not None else sys.argv[1:]),
            prog_name="lamina",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return EXIT_INTERRUPTED
    except LaminaError as exc:
        _print_error(exc)
        return exc.exit_status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (`lamina images | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception:
        # Anything that is not a LaminaError is a bug in lamina: show it whole.
        import traceback

        traceback.print_exc()
        click.echo("error: internal error (a bug in lamina; please report it)", err=True)
        return EXIT_BUG
    return pop_exit_status()
