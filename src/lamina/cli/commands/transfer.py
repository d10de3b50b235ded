"""Moving images: load, save, copy."""

from __future__ import annotations

import sys
import tempfile
from argparse import ArgumentTypeError, Namespace
from pathlib import Path

from lamina.cli.command import arg, command, existing_path, file_path
from lamina.cli.context import Context
from lamina.cli.progress import LayerProgress
from lamina.errors import UsageError

FORMATS = ["docker-archive", "oci-archive", "oci"]
COMPRESSIONS = ["gzip", "zstd", "none"]
_COMPRESS_HELP = (
    "Re-encode layers as gzip, zstd or none (oci/oci-archive only; default: keep the blobs)."
)


@command(
    arg(
        "-i",
        "--input",
        dest="input_",
        type=existing_path,
        help="Read from an archive file (or an OCI layout dir) instead of stdin.",
    ),
    arg("-q", "--quiet", action="store_true", help="Suppress progress output."),
    arg("--platform", help="os/arch[/variant] to pick from an index (default: the host)."),
)
def load(ctx: Context, args: Namespace) -> None:
    """Load images from a docker-archive, oci-archive or OCI layout (detected like docker load)."""
    if args.input_ is None and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty (use -i FILE)")
    with LayerProgress(verb="Loading", quiet=args.quiet) as progress:
        loaded = ctx.engine.images.load(
            Path(args.input_) if args.input_ is not None else sys.stdin.buffer,
            platform=args.platform,
            on_layer=progress,
        )
    from lamina.oci import reference

    for item in loaded:
        if item.names:
            for n in item.names:
                print(f"Loaded image: {reference.familiar(n)}")
        else:
            print(f"Loaded image ID: {item.record.id}")


@command(
    arg("images", nargs="+", metavar="IMAGE"),
    arg(
        "-o",
        "--output",
        type=Path,
        help="Write to a file (or dir, for --format oci) instead of stdout.",
    ),
    arg(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="docker-archive",
        help="(default: %(default)s)",
    ),
    arg("--compress", choices=COMPRESSIONS, help=_COMPRESS_HELP),
    arg("-q", "--quiet", action="store_true", help="Suppress progress output."),
)
def save(ctx: Context, args: Namespace) -> None:
    """Save images to an archive (docker save), or an OCI layout dir."""
    images, output, fmt, compress, quiet = (
        tuple(args.images),
        args.output,
        args.fmt,
        args.compress,
        args.quiet,
    )
    if output is not None:
        if fmt != "oci":  # a file: checked before anything is written, as export's -o
            try:
                file_path(str(output))
            except ArgumentTypeError as exc:
                raise UsageError(f"argument -o/--output: {exc}") from None
        with LayerProgress(verb="Writing", quiet=quiet) as progress:
            ctx.engine.images.save(images, output, format=fmt, compress=compress, on_layer=progress)
        return
    if fmt == "oci":
        raise UsageError("--format oci writes a directory: give it with -o DIR")
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with tempfile.TemporaryDirectory(prefix="lamina-save-") as tmp:
        out = Path(tmp) / "image.tar"
        with LayerProgress(verb="Writing", quiet=quiet) as progress:
            ctx.engine.images.save(images, out, format=fmt, compress=compress, on_layer=progress)
        with open(out, "rb") as f:
            import shutil

            shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()


@command(
    arg("source"),
    arg("destination"),
    arg("-q", "--quiet", action="store_true", help="Suppress progress output."),
    arg("--platform", help="os/arch[/variant] to pick from an index (default: the host)."),
    arg(
        "--all",
        dest="all_platforms",
        action="store_true",
        help="Copy every platform of an index (oci/oci-archive to oci/oci-archive).",
    ),
    arg("--compress", choices=COMPRESSIONS, help=_COMPRESS_HELP),
)
def copy(ctx: Context, args: Namespace) -> None:
    """Copy an image between transports, skopeo style.

    SOURCE and DESTINATION are oci:DIR[:REF], oci-archive:FILE[:REF],
    docker-archive:FILE[:REF] or lamina:REF (the store)."""
    with LayerProgress(verb="Copying", quiet=args.quiet) as progress:
        rec = ctx.engine.images.copy(
            args.source,
            args.destination,
            platform=args.platform,
            all_platforms=args.all_platforms,
            compress=args.compress,
            on_layer=progress,
        )
    if rec is not None and not args.quiet:
        print(rec.id)
