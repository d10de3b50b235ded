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
        if isinstance(value, int) and key.endswith(("Size", "Bytes")):
            click.echo(f"{key}: {value} ({human_size(value)})")
        else:
            click.echo(f"{key}: {value}")


@click.command("verify")
@click.argument("image", required=False)
@click.option(
    "--deep",
    is_flag=True,
    help="Also walk every unpacked layer dir and check it against the file index.",
)
@click.option(
    "--repair",
    is_flag=True,
    help="With --deep: re-extract tampered layers from their verified blobs.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_ctx
def verify(ctx: Context, image: str | None, deep: bool, repair: bool, fmt: str) -> None:
    """Re-hash every blob and check the store's records; exit 1 naming each problem.

    With --deep (implied by IMAGE) also compare each unpacked layer (of IMAGE, or all) with its
    file index: modified, added, deleted, chmod-ed, chown-ed and xattr-changed files are named
    with their layer. --repair re-extracts a tampered layer (refused while mounted)."""
    if repair and not (deep or image):
        raise click.UsageError("--repair needs --deep")
    if not (deep or image):
        problems = ctx.engine.system.verify()
        for p in problems:
            click.echo(str(p))
        if problems:
            click.echo(f"{len(problems)} problem(s) found", err=True)
            set_exit_status(1)
        else:
            click.echo("store verified: no problems", err=True)
        return
    result = ctx.engine.forensics.verify_deep(image, repair=repair)
    findings = result.findings
    unrepaired = [f for lc in result.layers if not lc.repaired for f in lc.findings]
    if fmt == "json":
        json_out(
            {
                "StoreProblems": [str(p) for p in result.store_problems],
                "Layers": [
                    {
                        "ChainID": lc.chain_id,
                        "Dir": str(lc.directory),
                        "Entries": lc.files,
                        "BytesHashed": lc.bytes_hashed,
                        "Repaired": lc.repaired,
                        "Findings": [
                            {
                                "Issue": f.issue.value,
                                "Path": "/" + f.path,
                                "Expected": f.expected,
                                "Actual": f.actual,
                            }
                            for f in lc.findings
                        ],
                    }
                    for lc in result.layers
                ],
            }
        )
    else:
        for p in result.store_problems:
            click.echo(str(p))
        for f in findings:
            click.echo(str(f))
        for lc in result.layers:
            if lc.repaired:
                click.echo(f"repaired: layer {lc.chain_id} re-extracted from its blob")
    click.echo(
        f"{len(result.layers)} layer(s) walked, {len(findings)} finding(s), "
        f"{sum(1 for lc in result.layers if lc.repaired)} repaired, "
        f"{len(result.store_problems)} store problem(s)",
        err=True,
    )
    if unrepaired or result.store_problems:
        set_exit_status(1)


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
