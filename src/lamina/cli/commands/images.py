"""Image commands: import, images, layers, inspect, tag, rmi, image mount/umount."""

from __future__ import annotations

import sys
from typing import IO

import click

from lamina.cli.context import Context, pass_ctx
from lamina.cli.render import human_size, json_out, since, table


def _short(digest: str, no_trunc: bool) -> str:
    return digest if no_trunc else digest.removeprefix("sha256:")[:12]


@click.command("import")
@click.argument("source")
@click.argument("repository", required=False)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help="Apply a Dockerfile instruction to the image config (CMD, ENV, ...).",
)
@click.option("-m", "--message", help="Commit message for the imported image's history.")
@pass_ctx
def import_(
    ctx: Context, source: str, repository: str | None, changes: tuple[str, ...], message: str | None
) -> None:
    """Import a rootfs tarball (plain, gzip or zstd; FILE or - for stdin) as a one-layer image."""
    stream: IO[bytes]
    if source == "-":
        stream = sys.stdin.buffer
        rec = ctx.engine.images.import_rootfs(
            stream, reference_=repository, changes=changes, message=message
        )
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise click.BadParameter(
                f"cannot open {source}: {exc.strerror}", param_hint="SOURCE"
            ) from exc
        with f:
            rec = ctx.engine.images.import_rootfs(
                f, reference_=repository, changes=changes, message=message
            )
    click.echo(str(rec.id))


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", help="json, or a Go template.")
@pass_ctx
def images(ctx: Context, quiet: bool, digests: bool, no_trunc: bool, fmt: str | None) -> None:
    """List images."""
    rows = ctx.engine.images.list()
    if quiet:
        seen: set[str] = set()
        for r in rows:
            if r.id not in seen:
                seen.add(r.id)
                click.echo(_short(r.id, no_trunc))
        return
    if fmt == "json":
        for r in rows:
            json_out(
                {
                    "Containers": "N/A",
                    "CreatedAt": r.created,
                    "CreatedSince": since(r.created),
                    "Digest": r.digest,
                    "ID": _short(r.id, no_trunc),
                    "Repository": r.repository,
                    "Size": human_size(r.size),
                    "Tag": r.tag,
                },
                indent=None,
            )
        return
    headers = (
        ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    )
    body = []
    for r in rows:
        cells = [r.repository, r.tag]
        if digests:
            cells.append(r.digest or "<none>")
        cells += [_short(r.id, no_trunc), since(r.created), human_size(r.size)]
        body.append(cells)
    table(headers, body)


@click.command("layers")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Don't truncate digests.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def layers(ctx: Context, image: str, no_trunc: bool, fmt: str) -> None:
    """List an image's layers, base first: chain id, diff id, size, entries, created by."""
    infos = ctx.engine.images.layers(image)
    if fmt == "json":
        json_out(
            [
                {
                    "Index": i.index,
                    "ChainID": i.chain_id,
                    "DiffID": i.diff_id,
                    "Digest": i.blob_digest,
                    "MediaType": i.media_type,
                    "Size": i.size,
                    "BlobSize": i.blob_size,
                    "Entries": i.entries,
                    "CreatedBy": i.created_by,
                }
                for i in infos
            ]
        )
        return
    table(
        ["#", "CHAIN ID", "DIFF ID", "SIZE", "ENTRIES", "CREATED BY"],
        [
            [
                str(i.index),
                _short(i.chain_id, no_trunc),
                _short(i.diff_id, no_trunc),
                human_size(i.size),
                str(i.entries),
                i.created_by if no_trunc or len(i.created_by) <= 45 else i.created_by[:44] + "…",
            ]
            for i in infos
        ],
    )


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="json, or a Go template.")
@click.option(
    "--type",
    "type_",
    type=click.Choice(["image"]),
    default=None,
    help="Only look for this kind of object.",
)
@pass_ctx
def inspect(ctx: Context, names: tuple[str, ...], fmt: str | None, type_: str | None) -> None:
    """Show low-level information on images as JSON (Docker API 1.41's shape)."""
    results = [ctx.engine.images.inspect(n) for n in names]
    if fmt is None:
        json_out(results)
    elif fmt == "json":
        json_out(results, indent=None)
    else:
        from lamina.cli.template import render_template

        for r in results:
            click.echo(render_template(fmt, r))


@click.command("tag")
@click.argument("source")
@click.argument("target")
@pass_ctx
def tag(ctx: Context, source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    ctx.engine.images.tag(source, target)


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove even when several names refer to it.")
@pass_ctx
def rmi(ctx: Context, names: tuple[str, ...], force: bool) -> None:
    """Remove images (untag by name; delete when no name is left)."""
    for n in names:
        for verb, what in ctx.engine.images.remove(n, force=force):
            click.echo(f"{verb}: {what}")


@click.group("image")
def image() -> None:
    """Manage images."""


@image.command("mount")
@click.argument("name")
@pass_ctx
def image_mount(ctx: Context, name: str) -> None:
    """Mount an image read-only and print the merged dir (undo with image umount)."""
    click.echo(str(ctx.engine.images.mount(name)))


@image.command("umount")
@click.argument("name")
@pass_ctx
def image_umount(ctx: Context, name: str) -> None:
    """Drop one mount of an image."""
    ctx.engine.images.unmount(name)


for _cmd in (import_, images, layers, inspect, tag, rmi):
    image.add_command(_cmd, name={"images": "ls", "rmi": "rm"}.get(_cmd.name or "", _cmd.name))

COMMANDS = [import_, images, layers, inspect, tag, rmi, image]
