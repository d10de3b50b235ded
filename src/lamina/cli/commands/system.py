"""System commands: info, verify."""

from __future__ import annotations

import click

from lamina.cli.context import Context, pass_ctx, set_exit_status
from lamina.cli.render import human_size, json_out


@click.command("info")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_ctx
def info(ctx: Context, fmt: str) -> None:
    """Show the store root, driver, counts and sizes."""
    data = ctx.engine.system.info()
    if fmt == "json":
        json_out(data)
        return
    for key, value in data.items():
        if isinstance(value, int) and key.endswith("Bytes"):
            click.echo(f"{key}: {value} ({human_size(value)})")
        else:
            click.echo(f"{key}: {value}")


@click.command("verify")
@pass_ctx
def verify(ctx: Context) -> None:
    """Re-hash every blob and check the store's records; exit 1 naming each problem."""
    problems = ctx.engine.system.verify()
    for p in problems:
        click.echo(str(p))
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        set_exit_status(1)
    else:
        click.echo("store verified: no problems", err=True)


@click.group("system")
def system() -> None:
    """Manage the store."""


system.add_command(info)

COMMANDS = [info, verify, system]
