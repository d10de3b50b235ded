"""Image commands: import, images, layers, inspect, tag, rmi, image mount/umount."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from typing import IO, Any

from lamina.cli.command import arg, boolean, command
from lamina.cli.context import Context, confirm
from lamina.cli.render import (
    human_size,
    inspect_each,
    json_out,
    print_deleted,
    print_rows,
    since,
    table,
)
from lamina.errors import UsageError


def _short(digest: str, no_trunc: bool) -> str:
    return digest if no_trunc else digest.removeprefix("sha256:")[:12]


@command(
    arg("source"),
    arg("repository", nargs="?"),
    arg(
        "-c",
        "--change",
        dest="changes",
        action="append",
        default=[],
        help="Apply a Dockerfile instruction to the image config (CMD, ENV, ...).",
    ),
    arg("-m", "--message", help="Commit message for the imported image's history."),
)
def import_(ctx: Context, args: Namespace) -> None:
    """Import a rootfs tarball (plain, gzip or zstd; FILE or - for stdin) as a one-layer image."""
    source, changes = args.source, tuple(args.changes)
    stream: IO[bytes]
    if source == "-":
        stream = sys.stdin.buffer
        rec = ctx.engine.images.import_rootfs(
            stream, reference_=args.repository, changes=changes, message=args.message
        )
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(
                f"Invalid value for SOURCE: cannot open {source}: {exc.strerror}"
            ) from exc
        with f:
            rec = ctx.engine.images.import_rootfs(
                f, reference_=args.repository, changes=changes, message=args.message
            )
    print(rec.id)


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


@command(
    arg("repository", nargs="?"),
    arg(
        "-a",
        "--all",
        dest="all_",
        action="store_true",
        help="Show all images (by default intermediate build images are hidden).",
    ),
    arg("-q", "--quiet", action="store_true", help="Only show image IDs."),
    arg("--digests", action="store_true", help="Show manifest digests."),
    arg("--no-trunc", action="store_true", help="Don't truncate output."),
    arg(
        "-f",
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help=(
            "dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]."
        ),
    ),
    arg("--format", dest="fmt", help="table, json, or a Go template."),
)
def images(ctx: Context, args: Namespace) -> None:
    """List images (REPOSITORY TAG IMAGE ID CREATED SIZE)."""
    no_trunc, digests, fmt = args.no_trunc, args.digests, args.fmt
    rows = ctx.engine.images.list(
        filters=_parse_filters(args.filters), repository=args.repository, all_=args.all_
    )
    if args.quiet:
        seen: set[str] = set()
        for r in rows:
            if r.id not in seen:
                seen.add(r.id)
                print(_short(r.id, no_trunc))
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


def _parse_filters(filters: list[str]) -> list[tuple[str, str]]:
    out = []
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq:
            raise UsageError(f"Invalid value for --filter: {f!r} is not KEY=VALUE")
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


@command(
    arg("image"),
    arg(
        "-H",
        "--human",
        type=boolean,
        default=True,
        metavar="BOOLEAN",
        help="Print sizes and dates in human readable format. (default: %(default)s)",
    ),
    arg("--no-trunc", action="store_true", help="Don't truncate output."),
    arg("-q", "--quiet", action="store_true", help="Only show image IDs."),
    arg("--format", dest="fmt", help="table, json, or a Go template."),
)
def history(ctx: Context, args: Namespace) -> None:
    """Show the history of an image, newest first (as docker history)."""
    from lamina.cli.render import created_at, truncate

    human, no_trunc = args.human, args.no_trunc
    rows = ctx.engine.images.history(args.image)
    if args.quiet:
        for r in rows:
            print(r.id if no_trunc or r.id == "<missing>" else _short(r.id, False))
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
    print_rows(args.fmt, data, default_columns=columns, headers=HISTORY_HEADERS)


@command(
    arg("image"),
    arg("--no-trunc", action="store_true", help="Don't truncate digests."),
    arg("--format", dest="fmt", choices=["table", "json"], default="table"),
)
def layers(ctx: Context, args: Namespace) -> None:
    """List an image's layers, base first: chain id, diff id, size, entries, files added,
    modified (M; C = chmod/chown only), deleted and hidden (opaque), and the step that made each.

    IMAGE may be a transport (oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE), read in
    place."""
    no_trunc = args.no_trunc
    infos = ctx.engine.forensics.layers(args.image)
    if args.fmt == "json":
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
    print()
    blocks = " ▏▎▍▌▋▊▉█"
    for index, size in sizes:
        eighths = round(width * 8 * size / biggest)
        bar = "█" * (eighths // 8) + (blocks[eighths % 8] if eighths % 8 else "")
        print(f"{index:>3} {bar or '▏':<{width}} {human_size(size)}")


@command(
    arg("names", nargs="+", metavar="NAME"),
    arg("-f", "--format", dest="fmt", help="json, or a Go template."),
    arg(
        "--type",
        dest="type_",
        choices=["image", "container", "volume"],
        default=None,
        help="Only look for this kind of object.",
    ),
    arg(
        "-s",
        "--size",
        action="store_true",
        help="Display total file sizes if the type is container.",
    ),
)
def inspect(ctx: Context, args: Namespace) -> None:
    """Show low-level information on containers, images or volumes as JSON (Docker API 1.41's
    shape); without --type a container is looked for first, then an image, then a volume."""
    inspect_each(
        ctx, args.fmt, args.names, lambda name: _inspect_one(ctx, name, args.type_, args.size)
    )


def _inspect_one(ctx: Context, name: str, type_: str | None, size: bool) -> dict[str, Any]:
    from lamina.errors import NotFoundError

    lookups: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        ("container", lambda ref: ctx.engine.containers.inspect(ref, size=size)),
        ("image", ctx.engine.images.inspect),
        ("volume", ctx.engine.volumes.inspect),
    ]
    kinds = lookups if type_ is None else [(type_, dict(lookups)[type_])]
    for kind, lookup in kinds:
        try:
            found = lookup(name)
        except (NotFoundError, UsageError):  # not a valid name of that kind either
            if type_ is not None:
                raise
            continue
        if size and kind != "container":  # docker's CLI, once per object
            print(f"WARNING: --size ignored for {kind}", file=sys.stderr)
        return found
    raise NotFoundError(f"no such object: {name}")


@command(arg("source"), arg("target"))
def tag(ctx: Context, args: Namespace) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    ctx.engine.images.tag(args.source, args.target)


@command(
    arg("names", nargs="+", metavar="NAME"),
    arg(
        "-f",
        "--force",
        action="store_true",
        help="Remove by id an image with several names, or one a stopped container uses.",
    ),
    arg("--no-prune", action="store_true", help="Do not delete untagged parents."),
)
def rmi(ctx: Context, args: Namespace) -> None:
    """Remove images: by name, untag it and delete the image when no name is left; by id,
    delete it and its names. An image other images are built on is only untagged."""

    def remove(name: str) -> None:
        for verb, what in ctx.engine.images.remove(name, force=args.force, prune=not args.no_prune):
            print(f"{verb}: {what}")

    ctx.each(args.names, remove)


@command(arg("name"))
def image_mount(ctx: Context, args: Namespace) -> None:
    """Mount an image read-only and print the merged dir (undo with image umount)."""
    print(ctx.engine.images.mount(args.name))


@command(arg("name"))
def image_umount(ctx: Context, args: Namespace) -> None:
    """Drop one mount of an image."""
    ctx.engine.images.unmount(args.name)


@command(
    arg(
        "-a",
        "--all",
        dest="all_",
        action="store_true",
        help="Remove all images no container uses, not just dangling ones.",
    ),
    arg("-f", "--force", action="store_true", help="Do not prompt for confirmation."),
    arg(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help="until=TIME|DURATION, label=K[=V], label!=K[=V], dangling=BOOL",
    ),
)
def image_prune(ctx: Context, args: Namespace) -> None:
    """Remove dangling (untagged) images and the layers only they used."""
    from lamina.engine.filters import IMAGE_KEYS, PruneFilters

    every = args.all_ or PruneFilters(args.filters, accepted=IMAGE_KEYS).dangling is False
    if not args.force:
        what = "all images without at least one container" if every else "all dangling images"
        confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?")
    result = ctx.engine.images.prune(all_=args.all_, filters=args.filters)
    print_deleted("Images", [f"{verb.lower()}: {what}" for verb, what in result.lines])
    print(f"Total reclaimed space: {human_size(result.reclaimed)}")


@command(
    arg("name"),
    arg("-o", "--output", help="Write to a file instead of stdout."),
)
def image_export(ctx: Context, args: Namespace) -> None:
    """Write the image's flattened root filesystem (whiteouts applied) as a tar."""
    from lamina.cli.render import write_tar

    write_tar(args.output, lambda f: ctx.engine.images.export(args.name, f))
