"""Forensic commands: trace, cat, extract, secrets, waste, tree, report, image diff.

IMAGE is a stored image or a transport spec (``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``,
``docker-archive:FILE[:REF]``), which is read in place without loading it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lamina.cli.context import Context, pass_ctx, set_exit_status
from lamina.cli.render import human_size, json_out, table

_SEVERITIES = ["info", "low", "medium", "high", "critical"]


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@click.command("trace")
@click.argument("image")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def trace(ctx: Context, image: str, path: str, fmt: str) -> None:
    """Every layer that created, changed, chmod/chown-ed, hid or deleted PATH."""
    t = ctx.engine.forensics.trace(image, path)
    if fmt == "json":
        json_out(
            {
                "Path": "/" + t.path,
                "Present": t.present,
                "Steps": [
                    {
                        "Layer": s.layer,
                        "Action": s.action.value,
                        "CreatedBy": s.created_by,
                        "Kind": s.kind,
                        "Mode": f"{s.mode:04o}",
                        "Uid": s.uid,
                        "Gid": s.gid,
                        "Size": s.size,
                        "Sha256": s.sha256,
                        "LinkName": s.linkname,
                        "Cause": s.cause,
                        "Changed": list(s.changed),
                        "Recover": s.recover,
                    }
                    for s in t.steps
                ],
            }
        )
        return
    for s in t.steps:
        what = "chmod/chown/xattrs" if s.action.value == "metadata" else s.action.value
        if s.changed:
            what += f" ({', '.join(s.changed)})"
        if s.cause:
            what += f" by {s.cause}"
        attrs = f"{s.kind} {s.mode:04o} {s.uid}:{s.gid}"
        if s.kind in ("file", "hardlink"):
            attrs += f" {s.size}B sha256:{(s.sha256 or '?')[:12]}"
        if s.linkname:
            attrs += f" -> {s.linkname}"
        click.echo(f"layer {s.layer}: {what}: {attrs}")
        if s.created_by:
            click.echo(f"    step: {_cut(s.created_by, 100)}")
        if s.recover:
            click.echo(f"    read: {s.recover}")
    state = "present in the final image" if t.present else "not in the final image"
    click.echo(f"/{t.path}: {state}")


@click.command("cat")
@click.argument("image")
@click.argument("path")
@click.option("--layer", type=int, help="Read the file as this layer saw it (0 = base).")
@pass_ctx
def cat(ctx: Context, image: str, path: str, layer: int | None) -> None:
    """Print a file of IMAGE, as any layer saw it (deleted and overwritten files too)."""
    ctx.engine.forensics.cat(image, path, layer=layer, out=sys.stdout.buffer)
    sys.stdout.buffer.flush()


@click.command("extract")
@click.argument("image")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to write into (as DEST/<image path>).",
)
@click.option("--layer", type=int, help="Extract as this layer saw it (0 = base).")
@pass_ctx
def extract(
    ctx: Context, image: str, paths: tuple[str, ...], dest: Path, layer: int | None
) -> None:
    """Copy files or dirs of IMAGE out (setuid bits dropped, owners not applied)."""
    done = ctx.engine.forensics.extract(image, paths, dest=dest, layer=layer)
    for x in done:
        click.echo(f"{x.dest} ({x.kind}, {x.size} bytes, from layer {x.layer})")


@click.command("secrets")
@click.argument("image")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file of extra rules (and an [allow] table).",
)
@click.option(
    "--allow",
    "allow_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML allow-list: paths, rules, fingerprints.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--min-severity",
    type=click.Choice(_SEVERITIES),
    default="info",
    help="Show findings at or above this severity.",
)
@click.option(
    "--no-content",
    is_flag=True,
    help="Index and config only (names, modes, hidden files, history): no blob is read.",
)
@click.option(
    "--fail-on", type=click.Choice(_SEVERITIES), help="Exit 1 when a finding reaches this severity."
)
@pass_ctx
def secrets(
    ctx: Context,
    image: str,
    rules_file: Path | None,
    allow_file: Path | None,
    fmt: str,
    min_severity: str,
    no_content: bool,
    fail_on: str | None,
) -> None:
    """Find credentials in every layer, hidden files, leaked build args and risky modes."""
    from lamina.forensics.rules import Severity

    result = ctx.engine.forensics.secrets(
        image, rules_file=rules_file, allow_file=allow_file, contents=not no_content
    )
    floor = Severity.parse(min_severity)
    shown = [f for f in result.findings if f.severity >= floor]
    if fmt == "json":
        json_out([f.json() for f in shown])
    else:
        table(
            ["SEVERITY", "RULE", "LAYER", "PATH", "MATCH", "INSTRUCTION"],
            [
                [
                    f.severity.label,
                    f.rule,
                    "-" if f.layer is None else str(f.layer),
                    ("/" + f.path if f.path else "(config)") + (" [hidden]" if f.hidden_by else ""),
                    f.match,
                    _cut(f.instruction, 50),
                ]
                for f in shown
            ],
        )
        click.echo(
            f"{len(shown)} finding(s); {result.scanned_files} files, "
            f"{human_size(result.scanned_bytes)} scanned",
            err=True,
        )
    worst = result.worst()
    if fail_on is not None and worst is not None and worst >= Severity.parse(fail_on):
        set_exit_status(1)


@click.command("waste")
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--top", type=int, default=20, show_default=True, help="Paths to list.")
@click.option("--lowest-efficiency", type=float, help="Exit 1 below this efficiency (0..1).")
@click.option("--highest-wasted-bytes", type=int, help="Exit 1 above this many reclaimable bytes.")
@pass_ctx
def waste(
    ctx: Context,
    image: str,
    fmt: str,
    top: int,
    lowest_efficiency: float | None,
    highest_wasted_bytes: int | None,
) -> None:
    """Bytes deleted or overwritten by later layers (reclaimable), per path, and efficiency."""
    w = ctx.engine.forensics.waste(image)
    if fmt == "json":
        json_out(w.json())
    else:
        click.echo(f"efficiency: {w.efficiency:.2%}")
        click.echo(
            f"reclaimable: {w.reclaimable_bytes} bytes ({human_size(w.reclaimable_bytes)})"
            f" = deleted {w.deleted_bytes} + overwritten {w.overwritten_bytes}"
            f" (identical re-adds {w.identical_bytes})"
        )
        click.echo(f"duplicate content in the final image: {w.duplicate_bytes} bytes")
        table(
            ["RECLAIMABLE", "COPIES", "PATH", "FATE"],
            [
                [
                    str(p.reclaimable),
                    str(len(p.copies)),
                    "/" + p.path,
                    ", ".join(f"{c.layer}:{c.fate}" for c in p.copies),
                ]
                for p in w.paths[:top]
            ],
        )
    failed = (lowest_efficiency is not None and w.efficiency < lowest_efficiency) or (
        highest_wasted_bytes is not None and w.reclaimable_bytes > highest_wasted_bytes
    )
    if failed:
        click.echo("waste thresholds exceeded", err=True)
        set_exit_status(1)


@click.command("tree")
@click.argument("image")
@click.argument("path", required=False, default="")
@click.option("--layer", type=int, help="Show only this layer's changes (0 = base).")
@click.option("--format", "fmt", type=click.Choice(["tree", "json"]), default="tree")
@pass_ctx
def tree(ctx: Context, image: str, path: str, layer: int | None, fmt: str) -> None:
    """The merged tree (marker, mode, owner, size, layer), or one layer's changes.

    Markers: A added, M modified, C chmod/chown/xattrs, R re-added identical, D deleted, O opaque.
    """
    t = ctx.engine.forensics.tree(image, path=path, layer=layer)
    if fmt == "json":
        json_out([n.json() for n in t.nodes])
        return
    base = t.root.count("/") + 1 if t.root else 0
    for n in t.nodes:
        depth = n.path.count("/") - base
        name = n.path.rpartition("/")[2] + ("/" if n.kind == "dir" else "")
        if n.linkname:
            name += f" -> {n.linkname}"
        meta = (
            f"{n.mode:04o} {n.uid}:{n.gid} {human_size(n.size) if n.kind == 'file' else '':>7}"
            if n.layer is not None
            else " " * 18
        )
        layer_col = f"L{n.layer}" if n.layer is not None else ""
        detail = f"  ({n.detail})" if n.detail else ""
        click.echo(f"{n.marker or ' '} {meta} {layer_col:>4}  {'  ' * max(depth, 0)}{name}{detail}")


@click.command("report")
@click.argument("image")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--rules", "rules_file", type=click.Path(path_type=Path, dir_okay=False))
@pass_ctx
def report(ctx: Context, image: str, output: Path, rules_file: Path | None) -> None:
    """Write a self-contained HTML report: layer chart, changes, findings, waste."""
    page = ctx.engine.forensics.report(image, rules_file=rules_file)
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror) from exc
    click.echo(str(output))


@click.command("diff")
@click.argument("image_a")
@click.argument("image_b", required=False)
@click.option("--layer", type=int, help="Compare layer N of IMAGE_A with its parent.")
@click.option("--unified", is_flag=True, help="Show text diffs of changed text files.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def image_diff(
    ctx: Context, image_a: str, image_b: str | None, layer: int | None, unified: bool, fmt: str
) -> None:
    """Compare two images' trees, or a layer with its parent: A added, C changed, D deleted."""
    result = ctx.engine.forensics.diff(image_a, image_b, layer=layer, unified=unified)
    if fmt == "json":
        json_out([e.json() for e in result.entries])
        return
    for e in result.entries:
        line = f"{e.change} /{e.path}"
        if e.changed:
            line += f"  ({', '.join(e.changed)}: {e.before} => {e.after})"
        click.echo(line)
        if e.unified:
            click.echo(e.unified, nl=False)


def _attach() -> None:
    from lamina.cli.commands.images import image

    image.add_command(image_diff, "diff")


_attach()

COMMANDS = [trace, cat, extract, secrets, waste, tree, report]
