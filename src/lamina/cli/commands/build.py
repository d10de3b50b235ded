"""``lamina build``: Docker's flags; step output on stderr, the image id on stdout."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path

from lamina.cli.command import arg, command, dir_path, file_path
from lamina.cli.context import Context
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


def _build_args(values: list[str]) -> tuple[dict[str, str], frozenset[str]]:
    """The args with a value, and the bare names the environment has no value for."""
    out: dict[str, str] = {}
    unset: set[str] = set()
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}: expected KEY=VALUE")
        unset.discard(key)
        if eq:
            out[key] = value
        elif key in os.environ:  # as Docker: a bare KEY takes the value from the environment
            out[key] = os.environ[key]
        else:
            out.pop(key, None)
            unset.add(key)
    return out, frozenset(unset)


def _labels(values: list[str]) -> dict[str, str]:
    """``--label KEY=VALUE`` (a bare KEY: an empty value), the last of a key winning, as
    Docker's CLI reads them."""
    out: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument {item!r} for "--label" flag: empty name')
        out[key] = value
    return out


def _secrets(values: list[str]) -> dict[str, Path]:
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


@command(
    arg(
        "-t",
        "--tag",
        dest="tags",
        action="append",
        default=[],
        help="Name the result (repeatable).",
    ),
    arg("-f", "--file", help="The Dockerfile (default CONTEXT/Dockerfile; - reads stdin)."),
    arg(
        "--build-arg",
        dest="build_args",
        action="append",
        default=[],
        help="Set a build-time variable KEY=VALUE.",
    ),
    arg(
        "--label",
        dest="labels",
        action="append",
        default=[],
        help="Set a label on the image, KEY=VALUE (repeatable; the value is not expanded).",
    ),
    arg("--target", help="Build up to this stage."),
    arg("--no-cache", action="store_true", help="Do not use the build cache."),
    arg(
        "--progress",
        choices=["auto", "plain", "tty"],
        default="auto",
        help="(default: %(default)s)",
    ),
    arg("-q", "--quiet", action="store_true", help="Print only the image id."),
    arg("--iidfile", type=file_path, help="Write the image id to this file."),
    arg(
        "--secret",
        dest="secrets",
        action="append",
        default=[],
        help="id=ID,src=FILE for RUN --mount=type=secret.",
    ),
    arg(
        "--network",
        choices=["default", "none", "host"],
        default="default",
        help="RUN steps' network where a step does not set one: none (the default; lamina "
        "has no bridge network) or host.",
    ),
    arg(
        "--source-date-epoch",
        type=int,
        help="Clamp mtimes and set created (default $SOURCE_DATE_EPOCH).",
    ),
    arg("context", type=dir_path),
)
def build(ctx: Context, args: Namespace) -> None:
    """Build an image from a Dockerfile and a context directory."""
    from lamina.engine.builds import BuildRequest, CachePolicy, NetworkMode, RunOutput
    from lamina.oci import reference

    context, file, tags, quiet = args.context, args.file, tuple(args.tags), args.quiet
    if context == "-":
        raise UsageError("a context tar on stdin is not supported; give a directory")
    context_dir = Path(context).absolute()
    if not os.path.isdir(context_dir):  # Path.is_dir raises for a name too long
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
    build_args, unset_args = _build_args(args.build_args)
    request = BuildRequest(
        dockerfile=text,
        context_dir=context_dir,
        dockerfile_path=dockerfile_path,
        build_args=build_args,
        unset_build_args=unset_args,
        target=args.target,
        labels=_labels(args.labels),
        cache=CachePolicy.IGNORE if args.no_cache else CachePolicy.USE,
        secrets=_secrets(args.secrets),
        source_date_epoch=_epoch(args.source_date_epoch),
        output=RunOutput.QUIET if quiet else RunOutput.STDERR,
        network=NetworkMode(args.network),
    )

    def report(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    with _terminate_as_interrupt():
        result = ctx.engine.builds.build(request, tags=tags, report=report)
    for warning in result.warnings:
        print(f"[Warning] {warning}", file=sys.stderr)
    report(f"Successfully built {result.image_id.hex[:12]}")
    for tag in tags:  # as docker prints it: "app" is "app:latest"
        report(f"Successfully tagged {reference.familiar(reference.normalize(tag))}")
    if args.iidfile:
        Path(args.iidfile).write_text(str(result.image_id))
    print(result.image_id)
