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


@system.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show per-image shared and unique sizes.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def df(ctx: Context, verbose: bool, fmt: str) -> None:
    """Show disk usage (layers shared by several images are counted once)."""
    from lamina.cli.render import since, table

    usage = ctx.engine.system.df()
    active = sum(1 for i in usage.images if i.containers)
    pct = (100 * usage.images_reclaimable // usage.images_total) if usage.images_total else 0
    rows = [
        {
            "Type": "Images",
            "TotalCount": str(len(usage.images)),
            "Active": str(active),
            "Size": human_size(usage.images_total),
            "Reclaimable": f"{human_size(usage.images_reclaimable)} ({pct}%)",
        }
    ]
    if fmt == "json":
        for r in rows:
            json_out(r, indent=None)
        return
    table(
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]] for r in rows],
    )
    if verbose:
        click.echo("\nImages space usage:\n")
        body = []
        for i in usage.images:
            for name in i.names or ("<none>:<none>",):
                repo, _, tag = name.rpartition(":")
                body.append(
                    [
                        repo,
                        tag,
                        i.id[7:19],
                        since(i.created),
                        human_size(i.size),
                        human_size(i.shared),
                        human_size(i.unique),
                        str(i.containers),
                    ]
                )
        table(
            [
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS",
            ],
            body,
        )


@system.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_ctx
def prune(ctx: Context, all_: bool, force: bool) -> None:
    """Remove dangling images (all unused with -a) and layers and blobs nothing references."""
    if not force:
        click.confirm(
            "WARNING! This will remove:\n  - all dangling images\n  - all layers and blobs "
            "no image uses\nAre you sure you want to continue?",
            abort=True,
            err=True,
        )
    result = ctx.engine.images.prune(all_=all_)
    gc = ctx.engine.system.gc()
    if result.lines:
        click.echo("Deleted Images:")
        for verb, what in result.lines:
            click.echo(f"{verb.lower()}: {what}")
        click.echo()
    if gc.layers:
        click.echo("Deleted Layers:")
        for layer in gc.layers:
            click.echo(str(layer))
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


system.add_command(info)
system.add_command(verify)

COMMANDS = [info, verify, system]
