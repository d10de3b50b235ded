"""Moving images: load, save, copy."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from lamina.cli.context import Context, pass_ctx
from lamina.cli.progress import LayerProgress

FORMATS = ["docker-archive", "oci-archive", "oci"]
COMPRESSIONS = ["gzip", "zstd", "none"]
_COMPRESS_HELP = (
    "Re-encode layers as gzip, zstd or none (oci/oci-archive only; default: keep the blobs)."
)


@click.command("load")
@click.option(
    "-i",
    "--input",
    "input_",
    type=click.Path(path_type=Path, exists=True),
    help="Read from an archive file (or an OCI layout dir) instead of stdin.",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.option("--platform", help="os/arch[/variant] to pick from an index (default: the host).")
@pass_ctx
def load(ctx: Context, input_: Path | None, quiet: bool, platform: str | None) -> None:
    """Load images from a docker-archive, oci-archive or OCI layout (detected like docker load)."""
    if input_ is None and sys.stdin.isatty():
        raise click.UsageError("requested load from stdin, but stdin is empty (use -i FILE)")
    with LayerProgress(verb="Loading", quiet=quiet) as progress:
        loaded = ctx.engine.images.load(
            input_ if input_ is not None else sys.stdin.buffer,
            platform=platform,
            on_layer=progress,
        )
    from lamina.oci import reference

    for item in loaded:
        if item.names:
            for n in item.names:
                click.echo(f"Loaded image: {reference.familiar(n)}")
        else:
            click.echo(f"Loaded image ID: {item.record.id}")


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write to a file (or dir, for --format oci) instead of stdout.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="docker-archive", show_default=True
)
@click.option("--compress", type=click.Choice(COMPRESSIONS), help=_COMPRESS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@pass_ctx
def save(
    ctx: Context,
    images: tuple[str, ...],
    output: Path | None,
    fmt: str,
    compress: str | None,
    quiet: bool,
) -> None:
    """Save images to an archive (docker save), or an OCI layout dir."""
    if output is not None:
        with LayerProgress(verb="Writing", quiet=quiet) as progress:
            ctx.engine.images.save(images, output, format=fmt, compress=compress, on_layer=progress)
        return
    if fmt == "oci":
        raise click.UsageError("--format oci writes a directory: give it with -o DIR")
    if sys.stdout.isatty():
        raise click.UsageError(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    with tempfile.TemporaryDirectory(prefix="lamina-save-") as tmp:
        out = Path(tmp) / "image.tar"
        with LayerProgress(verb="Writing", quiet=quiet) as progress:
            ctx.engine.images.save(images, out, format=fmt, compress=compress, on_layer=progress)
        with open(out, "rb") as f:
            import shutil

            shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.option("--platform", help="os/arch[/variant] to pick from an index (default: the host).")
@click.option(
    "--all",
    "all_platforms",
    is_flag=True,
    help="Copy every platform of an index (oci/oci-archive to oci/oci-archive).",
)
@click.option("--compress", type=click.Choice(COMPRESSIONS), help=_COMPRESS_HELP)
@pass_ctx
def copy(
    ctx: Context,
    source: str,
    destination: str,
    quiet: bool,
    platform: str | None,
    all_platforms: bool,
    compress: str | None,
) -> None:
    """Copy an image between transports, skopeo style.

    SOURCE and DESTINATION are oci:DIR[:REF], oci-archive:FILE[:REF],
    docker-archive:FILE[:REF] or lamina:REF (the store)."""
    with LayerProgress(verb="Copying", quiet=quiet) as progress:
        rec = ctx.engine.images.copy(
            source,
            destination,
            platform=platform,
            all_platforms=all_platforms,
            compress=compress,
            on_layer=progress,
        )
    if rec is not None and not quiet:
        click.echo(str(rec.id))


COMMANDS = [load, save, copy]
