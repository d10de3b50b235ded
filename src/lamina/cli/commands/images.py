"""Image commands: import, images, layers, inspect, tag, rmi, image mount/umount."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from lamina.cli.context import Context, pass_ctx
from lamina.cli.render import human_size, inspect_out, json_out, print_rows, since, table


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


IMAGE_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
}


@click.command("images")
@click.argument("repository", required=False)
@click.option(
    "-a",
    "--all",
    "all_",
    is_flag=True,
    help="Show all images (by default intermediate build images are hidden).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    help="dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE].",
)
@click.option("--format", "fmt", help="table, json, or a Go template.")
@pass_ctx
def images(
    ctx: Context,
    repository: str | None,
    all_: bool,
    quiet: bool,
    digests: bool,
    no_trunc: bool,
    filters: tuple[str, ...],
    fmt: str | None,
) -> None:
    """List images (REPOSITORY TAG IMAGE ID CREATED SIZE)."""
    rows = ctx.engine.images.list(filters=_parse_filters(filters), repository=repository, all_=all_)
    if quiet:
        seen: set[str] = set()
        for r in rows:
            if r.id not in seen:
                seen.add(r.id)
                click.echo(_short(r.id, no_trunc))
        return
    data = [
        {
            "Containers": "N/A",
            "CreatedAt": r.created,
            "CreatedSince": since(r.created),
            "Digest": r.digest if digests or fmt else "",
            "ID": _short(r.id, no_trunc),
            "Repository": r.repository,
            "Size": human_size(r.size),
            "Tag": r.tag,
        }
        for r in rows
    ]
    columns = (
        ["Repository", "Tag"] + (["Digest"] if digests else []) + ["ID", "CreatedSince", "Size"]
    )
    print_rows(fmt, data, default_columns=columns, headers=IMAGE_HEADERS)


def _parse_filters(filters: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq:
            raise click.BadParameter(f"{f!r} is not KEY=VALUE", param_hint="--filter")
        out.append((key.strip(), value.strip()))
    return out


HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


@click.command("history")
@click.argument("image")
@click.option(
    "-H",
    "--human",
    type=bool,
    default=True,
    show_default=True,
    help="Print sizes and dates in human readable format.",
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "fmt", help="table, json, or a Go template.")
@pass_ctx
def history(
    ctx: Context, image: str, human: bool, no_trunc: bool, quiet: bool, fmt: str | None
) -> None:
    """Show the history of an image, newest first (as docker history)."""
    from lamina.cli.render import created_at, truncate

    rows = ctx.engine.images.history(image)
    if quiet:
        for r in rows:
            click.echo(r.id if no_trunc or r.id == "<missing>" else _short(r.id, False))
        return
    data = []
    for r in rows:
        by = r.created_by.replace("\t", " ")
        data.append(
            {
                "Comment": r.comment,
                "CreatedAt": created_at(r.created),
                "CreatedBy": by if no_trunc else truncate(by, 45),
                "CreatedSince": since(r.created),
                "ID": r.id if no_trunc or r.id == "<missing>" else _short(r.id, False),
                "Size": human_size(r.size) if human else str(r.size),
            }
        )
    columns = ["ID", "CreatedSince" if human else "CreatedAt", "CreatedBy", "Size", "Comment"]
    print_rows(fmt, data, default_columns=columns, headers=HISTORY_HEADERS)


@click.command("layers")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Don't truncate digests.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def layers(ctx: Context, image: str, no_trunc: bool, fmt: str) -> None:
    """List an image's layers, base first: chain id, diff id, size, entries, files added,
    modified (M; C = chmod/chown only), deleted and hidden (opaque), and the step that made each.

    IMAGE may be a transport (oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE), read in
    place."""
    infos = ctx.engine.forensics.layers(image)
    if fmt == "json":
        json_out(
            [
                {
                    "Index": i.index,
                    "ChainID": i.chain_id,
                    "DiffID": i.diff_id,
                    "Digest": i.digest,
                    "MediaType": i.media_type,
                    "Size": i.size,
                    "BlobSize": i.blob_size,
                    "Entries": i.entries,
                    "CreatedBy": i.created_by,
                    "Added": i.added,
                    "Modified": i.modified,
                    "Metadata": i.metadata,
                    "Readded": i.readded,
                    "Deleted": i.deleted,
                    "Hidden": i.hidden,
                    "RemovedBytes": i.removed_bytes,
                }
                for i in infos
            ]
        )
        return
    table(
        [
            *("#", "CHAIN ID", "DIFF ID", "SIZE", "ENTRIES"),
            *("ADDED", "MODIFIED", "DELETED", "HIDDEN", "CREATED BY"),
        ],
        [
            [
                str(i.index),
                _short(i.chain_id, no_trunc),
                _short(i.diff_id, no_trunc),
                human_size(i.size),
                str(i.entries),
                str(i.added),
                f"{i.modified}"
                + (f" C{i.metadata}" if i.metadata else "")
                + (f" R{i.readded}" if i.readded else ""),
                str(i.deleted),
                str(i.hidden),
                i.created_by if no_trunc or len(i.created_by) <= 45 else i.created_by[:44] + "…",
            ]
            for i in infos
        ],
    )
    _size_chart([(i.index, i.size) for i in infos])


def _size_chart(sizes: list[tuple[int, int]], *, width: int = 40) -> None:
    """One bar per layer, scaled to the biggest (eighth-block resolution)."""
    biggest = max((s for _, s in sizes), default=0)
    if not biggest:
        return
    click.echo()
    blocks = " ▏▎▍▌▋▊▉█"
    for index, size in sizes:
        eighths = round(width * 8 * size / biggest)
        bar = "█" * (eighths // 8) + (blocks[eighths % 8] if eighths % 8 else "")
        click.echo(f"{index:>3} {bar or '▏':<{width}} {human_size(size)}")


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="json, or a Go template.")
@click.option(
    "--type",
    "type_",
    type=click.Choice(["image", "container", "volume"]),
    default=None,
    help="Only look for this kind of object.",
)
@pass_ctx
def inspect(ctx: Context, names: tuple[str, ...], fmt: str | None, type_: str | None) -> None:
    """Show low-level information on containers, images or volumes as JSON (Docker API 1.41's
    shape); without --type a container is looked for first, then an image, then a volume."""
    results = [_inspect_one(ctx, n, type_) for n in names]
    inspect_out(fmt, results)


def _inspect_one(ctx: Context, name: str, type_: str | None) -> dict[str, Any]:
    from lamina.errors import NotFoundError, UsageError

    lookups: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        ("container", ctx.engine.containers.inspect),
        ("image", ctx.engine.images.inspect),
        ("volume", ctx.engine.volumes.inspect),
    ]
    if type_ is not None:
        return dict(lookups)[type_](name)
    for _, lookup in lookups:
        try:
            return lookup(name)
        except (NotFoundError, UsageError):  # not a valid name of that kind either
            continue
    raise NotFoundError(f"no such object: {name}")


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


@image.command("prune")
@click.option(
    "-a",
    "--all",
    "all_",
    is_flag=True,
    help="Remove all images no container uses, not just dangling ones.",
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_ctx
def image_prune(ctx: Context, all_: bool, force: bool) -> None:
    """Remove dangling (untagged) images and the layers only they used."""
    if not force:
        what = "all images without at least one container" if all_ else "all dangling images"
        click.confirm(
            f"WARNING! This will remove {what}.\nAre you sure you want to continue?",
            abort=True,
            err=True,
        )
    result = ctx.engine.images.prune(all_=all_)
    if result.lines:
        click.echo("Deleted Images:")
        for verb, what in result.lines:
            click.echo(f"{verb.lower()}: {what}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


@image.command("export")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=False,
    help="Write to a file instead of stdout.",
)
@pass_ctx
def image_export(ctx: Context, name: str, output: Path | None) -> None:
    """Write the image's flattened root filesystem (whiteouts applied) as a tar."""
    from lamina.cli.render import write_tar

    write_tar(output, lambda f: ctx.engine.images.export(name, f))


for _cmd in (import_, images, layers, inspect, tag, rmi, history):
    image.add_command(_cmd, name={"images": "ls", "rmi": "rm"}.get(_cmd.name or "", _cmd.name))

COMMANDS = [import_, images, layers, inspect, tag, rmi, history, image]
