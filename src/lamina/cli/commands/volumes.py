"""Volume commands: volume create, ls, inspect, rm, prune, and (beyond Docker) export/import."""

from __future__ import annotations

import sys
from argparse import Namespace

from lamina.cli.command import arg, command, file_path
from lamina.cli.context import Context
from lamina.cli.render import inspect_each, print_rows
from lamina.errors import UsageError


@command(
    arg("--label", dest="labels", action="append", default=[], help="Set metadata (KEY=VALUE)."),
    arg("-d", "--driver", default="local", help="Only 'local' exists."),
    arg(
        "-o",
        "--opt",
        dest="options",
        action="append",
        default=[],
        help="The local driver's options: type=, device=, o= (mount options), e.g. "
        "-o type=tmpfs -o device=tmpfs -o o=size=64m.",
    ),
    arg("name", nargs="?"),
)
def create(ctx: Context, args: Namespace) -> None:
    """Create a volume (a random name when none is given) and print its name."""
    driver = args.driver
    if driver != "local":
        raise UsageError(f"volume driver {driver!r} is not available (only 'local')")
    volume = ctx.engine.volumes.create(
        args.name, labels=tuple(args.labels), options=tuple(args.options)
    )
    print(volume.name)


@command(
    arg("-q", "--quiet", action="store_true", help="Only show volume names."),
    arg(
        "-f",
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help="name=, label=, dangling=",
    ),
    arg("--format", dest="fmt", help="json, or a Go template."),
)
def ls(ctx: Context, args: Namespace) -> None:
    """List volumes."""
    vols = ctx.engine.volumes.list(filters=tuple(args.filters))
    if args.quiet:
        for v in vols:
            print(v.name)
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
        args.fmt,
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


@command(
    arg("-f", "--format", dest="fmt", help="json, or a Go template."),
    arg("names", nargs="+", metavar="NAME"),
)
def inspect(ctx: Context, args: Namespace) -> None:
    """Show volumes as JSON (Docker's shape)."""
    inspect_each(ctx, args.fmt, args.names, ctx.engine.volumes.inspect)


@command(
    arg("-f", "--force", action="store_true", help="No error for a volume that does not exist."),
    arg("names", nargs="+", metavar="NAME"),
)
def rm(ctx: Context, args: Namespace) -> None:
    """Remove volumes (refused while a container uses one)."""

    def remove(name: str) -> None:
        ctx.engine.volumes.remove(name, force=args.force)
        print(name)

    ctx.each(args.names, remove)


@command(
    arg(
        "-a",
        "--all",
        dest="all_",
        action="store_true",
        help="Also named volumes, not only anonymous.",
    ),
    arg("-f", "--force", action="store_true", help="Do not prompt (lamina never prompts)."),
    arg("--filter", dest="filters", action="append", default=[], help="label=K[=V], label!=K[=V]"),
)
def prune(ctx: Context, args: Namespace) -> None:
    """Remove volumes no container uses (anonymous ones unless --all)."""
    from lamina.cli.render import human_size, print_deleted

    result = ctx.engine.volumes.prune(all_volumes=args.all_, filters=args.filters)
    print_deleted("Volumes", result.names)
    print(f"Total reclaimed space: {human_size(result.reclaimed)}")


@command(
    arg("-o", "--output", type=file_path, help="Write to a file."),
    arg("name"),
)
def export(ctx: Context, args: Namespace) -> None:
    """Write a volume's content as a tar (stdout unless -o)."""
    from lamina.cli.render import write_tar

    write_tar(args.output, lambda f: ctx.engine.volumes.export(args.name, f))


@command(arg("name"), arg("source"))
def import_(ctx: Context, args: Namespace) -> None:
    """Extract a tar (FILE or - for stdin; plain, gzip or zstd) into a volume, creating it."""
    name, source = args.name, args.source
    if source == "-":
        ctx.engine.volumes.import_(name, sys.stdin.buffer)
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(
                f"Invalid value for SOURCE: cannot open {source}: {exc.strerror}"
            ) from exc
        with f:
            ctx.engine.volumes.import_(name, f)
    print(name)
