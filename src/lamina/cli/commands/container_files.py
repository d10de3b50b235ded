"""A container's filesystem, docker-shaped: mount, umount, diff, commit, export, cp."""

from __future__ import annotations

from argparse import Namespace

from lamina.cli.command import arg, boolean, command, file_path
from lamina.cli.context import Context
from lamina.errors import UsageError


@command(arg("container"))
def mount(ctx: Context, args: Namespace) -> None:
    """Mount a container's rootfs read-write and print the merged dir."""
    print(ctx.engine.containers.mount(args.container))


@command(arg("container"))
def umount(ctx: Context, args: Namespace) -> None:
    """Drop one mount of a container's rootfs."""
    ctx.engine.containers.unmount(args.container)


@command(arg("container"))
def diff(ctx: Context, args: Namespace) -> None:
    """Files changed in a container's filesystem (A added, C changed, D deleted)."""
    for change in ctx.engine.containers.diff(args.container):
        print(f"{change.kind.value} {change.path}")


@command(
    arg("-m", "--message", help="Commit message."),
    arg("-a", "--author", help="Author."),
    arg(
        "-c",
        "--change",
        dest="changes",
        action="append",
        default=[],
        help="Dockerfile instruction to apply.",
    ),
    arg(
        "-p",
        "--pause",
        type=boolean,
        default=True,
        metavar="BOOLEAN",
        help="Pause a running container while its layer is read (default: %(default)s).",
    ),
    arg("container"),
    arg("reference", nargs="?"),
)
def commit(ctx: Context, args: Namespace) -> None:
    """Create a new image from a container's changes."""
    rec = ctx.engine.containers.commit(
        args.container,
        reference=args.reference,
        message=args.message,
        author=args.author,
        changes=tuple(args.changes),
        pause=args.pause,
    )
    print(rec.id)


@command(
    arg("-o", "--output", type=file_path, help="Write to a file."),
    arg("container"),
)
def export(ctx: Context, args: Namespace) -> None:
    """Export a container's flattened filesystem as a tar (stdout unless -o)."""
    from lamina.cli.render import write_tar

    write_tar(args.output, lambda f: ctx.engine.containers.export(args.container, f))


@command(
    arg(
        "-a",
        "--archive",
        action="store_true",
        help="Archive mode: files copied in belong to the container's user (when it has one).",
    ),
    arg("-L", "--follow-link", action="store_true", help="Always follow a symlink in SRC."),
    arg("source"),
    arg("destination"),
)
def cp(ctx: Context, args: Namespace) -> None:
    """Copy files between a container and the host: CONTAINER:SRC DEST or SRC CONTAINER:DEST.
    As docker cp: a dir SRC goes into an existing dir DEST (SRC/. puts what it holds there)
    or becomes DEST; a file SRC goes into DEST or is saved as DEST (DEST ending in "/" must be
    an existing dir). DEST "-" writes a tar of SRC to stdout; SRC "-" extracts a tar (plain,
    gzip, bzip2, xz or zstd) read from stdin into DEST, an existing dir in the container."""
    source, destination = args.source, args.destination
    if source == "-" and destination != "-":
        import sys

        if sys.stdin is None:  # started with stdin closed (<&-)
            raise UsageError("cp - reads a tar from stdin, which is closed")
        ctx.engine.containers.extract_archive(destination, sys.stdin.buffer, archive=args.archive)
        return
    if destination == "-":
        from lamina.cli.render import write_tar

        write_tar(
            None,
            lambda f: ctx.engine.containers.copy_archive(source, f, follow_link=args.follow_link),
        )
        return
    ctx.engine.containers.copy(
        source, destination, archive=args.archive, follow_link=args.follow_link
    )
