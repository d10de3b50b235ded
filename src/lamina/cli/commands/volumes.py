"""Volume commands: volume create, ls, inspect, rm, prune, and (beyond Docker) export/import."""

from __future__ import annotations

import sys

import click

from lamina.cli.context import Context, pass_ctx, set_exit_status
from lamina.cli.render import inspect_out, print_rows
from lamina.errors import LaminaError, UsageError


@click.group("volume")
def volume() -> None:
    """Manage volumes."""


@volume.command("create")
@click.option("--label", "labels", multiple=True, help="Set metadata (KEY=VALUE).")
@click.option("-d", "--driver", default="local", help="Only 'local' exists.")
@click.argument("name", required=False)
@pass_ctx
def create(ctx: Context, labels: tuple[str, ...], driver: str, name: str | None) -> None:
    """Create a volume (a random name when none is given) and print its name."""
    if driver != "local":
        raise UsageError(f"volume driver {driver!r} is not available (only 'local')")
    click.echo(ctx.engine.volumes.create(name, labels=labels).name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only show volume names.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, label=, dangling=")
@click.option("--format", "fmt", help="json, or a Go template.")
@pass_ctx
def ls(ctx: Context, quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    vols = ctx.engine.volumes.list(filters=filters)
    if quiet:
        for v in vols:
            click.echo(v.name)
        return
    rows = [
        {
            "Availability": "N/A",
            "Driver": v.driver,
            "Group": "N/A",
            "Labels": ",".join(f"{k}={val}" for k, val in v.labels.items()),
            "Links": "N/A",
            "Mountpoint": v.mountpoint,
            "Name": v.name,
            "Scope": "local",
            "Size": "N/A",
            "Status": "N/A",
        }
        for v in vols
    ]
    print_rows(
        fmt,
        rows,
        default_columns=["Driver", "Name"],
        headers={
            "Driver": "DRIVER",
            "Name": "VOLUME NAME",
            "Labels": "LABELS",
            "Mountpoint": "MOUNTPOINT",
            "Scope": "SCOPE",
            "Size": "SIZE",
        },
    )


@volume.command("inspect")
@click.option("-f", "--format", "fmt", help="json, or a Go template.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(ctx: Context, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show volumes as JSON (Docker's shape)."""
    results = [ctx.engine.volumes.inspect(n) for n in names]
    inspect_out(fmt, results)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def rm(ctx: Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove volumes (refused while a container uses one)."""
    failed = False
    for n in names:
        try:
            ctx.engine.volumes.remove(n, force=force)
        except LaminaError as exc:
            if len(names) == 1:
                raise
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        click.echo(n)
    if failed:
        set_exit_status(1)


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Also named volumes, not only anonymous.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt (lamina never prompts).")
@pass_ctx
def prune(ctx: Context, all_: bool, force: bool) -> None:
    """Remove volumes no container uses (anonymous ones unless --all)."""
    removed = ctx.engine.volumes.prune(all_volumes=all_)
    if removed:
        click.echo("Deleted Volumes:")
        for n in removed:
            click.echo(n)


@volume.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@click.argument("name")
@pass_ctx
def export(ctx: Context, output: str | None, name: str) -> None:
    """Write a volume's content as a tar (stdout unless -o)."""
    from lamina.cli.render import write_tar

    write_tar(output, lambda f: ctx.engine.volumes.export(name, f))


@volume.command("import")
@click.argument("name")
@click.argument("source")
@pass_ctx
def import_(ctx: Context, name: str, source: str) -> None:
    """Extract a tar (FILE or - for stdin; plain, gzip or zstd) into a volume, creating it."""
    if source == "-":
        ctx.engine.volumes.import_(name, sys.stdin.buffer)
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise click.BadParameter(
                f"cannot open {source}: {exc.strerror}", param_hint="SOURCE"
            ) from exc
        with f:
            ctx.engine.volumes.import_(name, f)
    click.echo(name)


COMMANDS = [volume]
