"""``lamina build``: Docker's flags; step output on stderr, the image id on stdout."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from lamina.cli.context import Context, pass_ctx
from lamina.errors import UsageError


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C while a build runs, so the running step is killed and its
    work layer removed (Python's default for SIGTERM exits without running any cleanup)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _build_args(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}: expected KEY=VALUE")
        if eq:
            out[key] = value
        elif key in os.environ:  # as Docker: a bare KEY takes the value from the environment
            out[key] = os.environ[key]
    return out


def _secrets(values: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in values:
        fields = dict(f.partition("=")[::2] for f in item.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        if not sid or not src:
            raise UsageError(f"invalid --secret {item!r}: expected id=ID,src=FILE")
        if not Path(src).is_file():
            raise UsageError(f"--secret {sid}: {src} is not a file")
        out[sid] = Path(src).absolute()
    return out


def _epoch(value: int | None) -> int | None:
    if value is not None:
        return value
    env = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not env:
        return None
    try:
        return int(env)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={env!r} is not an integer") from None


@click.command("build")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the result (repeatable).")
@click.option(
    "-f", "--file", "file", help="The Dockerfile (default CONTEXT/Dockerfile; - reads stdin)."
)
@click.option(
    "--build-arg", "build_args", multiple=True, help="Set a build-time variable KEY=VALUE."
)
@click.option("--target", help="Build up to this stage.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option(
    "--progress", type=click.Choice(["auto", "plain", "tty"]), default="auto", show_default=True
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image id to this file.")
@click.option(
    "--secret", "secrets", multiple=True, help="id=ID,src=FILE for RUN --mount=type=secret."
)
@click.option(
    "--source-date-epoch",
    type=int,
    help="Clamp mtimes and set created (default $SOURCE_DATE_EPOCH).",
)
@click.argument("context", type=click.Path(file_okay=False))
@pass_ctx
def build(
    ctx: Context,
    tags: tuple[str, ...],
    file: str | None,
    build_args: tuple[str, ...],
    target: str | None,
    no_cache: bool,
    progress: str,
    quiet: bool,
    iidfile: str | None,
    secrets: tuple[str, ...],
    source_date_epoch: int | None,
    context: str,
) -> None:
    """Build an image from a Dockerfile and a context directory."""
    from lamina.engine.builds import BuildRequest, CachePolicy, RunOutput

    if context == "-":
        raise UsageError("a context tar on stdin is not supported; give a directory")
    context_dir = Path(context).absolute()
    if not context_dir.is_dir():
        raise UsageError(f"the build context {context} is not a directory")
    dockerfile_path: Path | None
    if file == "-":
        text, dockerfile_path = sys.stdin.read(), None
    else:
        dockerfile_path = Path(file).absolute() if file else context_dir / "Dockerfile"
        try:
            text = dockerfile_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the Dockerfile {dockerfile_path}: {exc}") from exc
    request = BuildRequest(
        dockerfile=text,
        context_dir=context_dir,
        dockerfile_path=dockerfile_path,
        build_args=_build_args(build_args),
        target=target,
        cache=CachePolicy.IGNORE if no_cache else CachePolicy.USE,
        secrets=_secrets(secrets),
        source_date_epoch=_epoch(source_date_epoch),
        output=RunOutput.QUIET if quiet else RunOutput.STDERR,
    )

    def report(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    with _terminate_as_interrupt():
        result = ctx.engine.builds.build(request, tags=tags, report=report)
    for warning in result.warnings:
        click.echo(f"[Warning] {warning}", err=True)
    report(f"Successfully built {result.image_id.hex[:12]}")
    for tag in tags:
        report(f"Successfully tagged {tag}")
    if iidfile:
        Path(iidfile).write_text(str(result.image_id))
    click.echo(str(result.image_id))


COMMANDS = [build]
