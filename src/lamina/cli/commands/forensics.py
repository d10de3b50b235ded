"""Forensic commands: trace, cat, extract, secrets, waste, tree, report, image diff.

IMAGE is a stored image or a transport spec (``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``,
``docker-archive:FILE[:REF]``), which is read in place without loading it.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from lamina.cli.command import arg, command, file_path
from lamina.cli.context import Context
from lamina.cli.render import human_size, json_out, printable, table
from lamina.errors import LaminaError

_SEVERITIES = ["info", "low", "medium", "high", "critical"]


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


_TABLE_OR_JSON = arg("--format", dest="fmt", choices=["table", "json"], default="table")


@command(arg("image"), arg("path"), _TABLE_OR_JSON)
def trace(ctx: Context, args: Namespace) -> None:
    """Every layer that created, changed, chmod/chown-ed, hid or deleted PATH."""
    t = ctx.engine.forensics.trace(args.image, args.path)
    if args.fmt == "json":
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
            attrs += f" -> {printable(s.linkname)}"
        print(f"layer {s.layer}: {what}: {attrs}")
        if s.created_by:
            print(f"    step: {_cut(printable(s.created_by), 100)}")
        if s.recover:
            print(f"    read: {s.recover}")  # shell-quoted where it is made
    state = "present in the final image" if t.present else "not in the final image"
    print(f"{printable('/' + t.path)}: {state}")


@command(
    arg("image"),
    arg("path"),
    arg("--layer", type=int, help="Read the file as this layer saw it (0 = base)."),
)
def cat(ctx: Context, args: Namespace) -> None:
    """Print a file of IMAGE, as any layer saw it (deleted and overwritten files too)."""
    ctx.engine.forensics.cat(args.image, args.path, layer=args.layer, out=sys.stdout.buffer)
    sys.stdout.buffer.flush()


@command(
    arg("image"),
    arg("paths", nargs="+", metavar="PATH"),
    arg(
        "-o",
        "--output",
        dest="dest",
        required=True,
        type=Path,
        help="Directory to write into (as DEST/<image path>).",
    ),
    arg("--layer", type=int, help="Extract as this layer saw it (0 = base)."),
)
def extract(ctx: Context, args: Namespace) -> None:
    """Copy files or dirs of IMAGE out (setuid bits dropped, owners not applied)."""
    done = ctx.engine.forensics.extract(
        args.image, tuple(args.paths), dest=args.dest, layer=args.layer
    )
    for x in done:
        print(f"{printable(str(x.dest))} ({x.kind}, {x.size} bytes, from layer {x.layer})")


def _file(value: str) -> Path:
    return Path(file_path(value))


@command(
    arg("image"),
    arg(
        "--rules",
        dest="rules_file",
        type=_file,
        help="TOML file of extra rules (and an [allow] table).",
    ),
    arg(
        "--allow",
        dest="allow_file",
        type=_file,
        help="TOML allow-list: paths, rules, fingerprints.",
    ),
    _TABLE_OR_JSON,
    arg(
        "--min-severity",
        choices=_SEVERITIES,
        default="info",
        help="Show findings at or above this severity.",
    ),
    arg(
        "--no-content",
        action="store_true",
        help="Index and config only (names, modes, hidden files, history): no blob is read.",
    ),
    arg("--fail-on", choices=_SEVERITIES, help="Exit 1 when a finding reaches this severity."),
)
def secrets(ctx: Context, args: Namespace) -> None:
    """Find credentials in every layer, hidden files, leaked build args and risky modes."""
    from lamina.forensics.rules import Severity

    result = ctx.engine.forensics.secrets(
        args.image,
        rules_file=args.rules_file,
        allow_file=args.allow_file,
        contents=not args.no_content,
    )
    fail_on = args.fail_on
    floor = Severity.parse(args.min_severity)
    shown = [f for f in result.findings if f.severity >= floor]
    if args.fmt == "json":
        json_out([f.json() for f in shown])
    else:
        table(
            ["SEVERITY", "RULE", "LAYER", "PATH", "MATCH", "INSTRUCTION"],
            [
                [
                    f.severity.label,
                    f.rule,
                    "-" if f.layer is None else str(f.layer),
                    (printable("/" + f.path) if f.path else "(config)")
                    + (" [hidden]" if f.hidden_by else ""),
                    printable(f.match),
                    _cut(printable(f.instruction), 50),
                ]
                for f in shown
            ],
        )
        print(
            f"{len(shown)} finding(s); {result.scanned_files} files, "
            f"{human_size(result.scanned_bytes)} scanned",
            file=sys.stderr,
        )
    worst = result.worst()
    if fail_on is not None and worst is not None and worst >= Severity.parse(fail_on):
        ctx.exit_status = 1


@command(
    arg("image"),
    _TABLE_OR_JSON,
    arg("--top", type=int, default=20, help="Paths to list. (default: %(default)s)"),
    arg("--lowest-efficiency", type=float, help="Exit 1 below this efficiency (0..1)."),
    arg("--highest-wasted-bytes", type=int, help="Exit 1 above this many reclaimable bytes."),
)
def waste(ctx: Context, args: Namespace) -> None:
    """Bytes deleted or overwritten by later layers (reclaimable), per path, and efficiency."""
    lowest_efficiency, highest_wasted_bytes = args.lowest_efficiency, args.highest_wasted_bytes
    w = ctx.engine.forensics.waste(args.image)
    if args.fmt == "json":
        json_out(w.json())
    else:
        print(f"efficiency: {w.efficiency:.2%}")
        print(
            f"reclaimable: {w.reclaimable_bytes} bytes ({human_size(w.reclaimable_bytes)})"
            f" = deleted {w.deleted_bytes} + overwritten {w.overwritten_bytes}"
            f" (identical re-adds {w.identical_bytes})"
        )
        print(f"duplicate content in the final image: {w.duplicate_bytes} bytes")
        table(
            ["RECLAIMABLE", "COPIES", "PATH", "FATE"],
            [
                [
                    str(p.reclaimable),
                    str(len(p.copies)),
                    printable("/" + p.path),
                    ", ".join(f"{c.layer}:{c.fate}" for c in p.copies),
                ]
                for p in w.paths[: args.top]
            ],
        )
    failed = (lowest_efficiency is not None and w.efficiency < lowest_efficiency) or (
        highest_wasted_bytes is not None and w.reclaimable_bytes > highest_wasted_bytes
    )
    if failed:
        print("waste thresholds exceeded", file=sys.stderr)
        ctx.exit_status = 1


@command(
    arg("image"),
    arg("path", nargs="?", default=""),
    arg("--layer", type=int, help="Show only this layer's changes (0 = base)."),
    arg("--format", dest="fmt", choices=["tree", "json"], default="tree"),
)
def tree(ctx: Context, args: Namespace) -> None:
    """The merged tree (marker, mode, owner, size, layer), or one layer's changes.

    Markers: A added, M modified, C chmod/chown/xattrs, R re-added identical, D deleted, O opaque.
    """
    t = ctx.engine.forensics.tree(args.image, path=args.path, layer=args.layer)
    if args.fmt == "json":
        json_out([n.json() for n in t.nodes])
        return
    base = t.root.count("/") + 1 if t.root else 0
    for n in t.nodes:
        depth = n.path.count("/") - base
        name = printable(n.path.rpartition("/")[2]) + ("/" if n.kind == "dir" else "")
        if n.linkname:
            name += f" -> {printable(n.linkname)}"
        meta = (
            f"{n.mode:04o} {n.uid}:{n.gid} {human_size(n.size) if n.kind == 'file' else '':>7}"
            if n.layer is not None
            else " " * 18
        )
        layer_col = f"L{n.layer}" if n.layer is not None else ""
        detail = f"  ({n.detail})" if n.detail else ""
        print(f"{n.marker or ' '} {meta} {layer_col:>4}  {'  ' * max(depth, 0)}{name}{detail}")


@command(
    arg("image"),
    arg("-o", "--output", required=True, type=_file),
    arg("--rules", dest="rules_file", type=_file),
)
def report(ctx: Context, args: Namespace) -> None:
    """Write a self-contained HTML report: layer chart, changes, findings, waste."""
    output: Path = args.output
    page = ctx.engine.forensics.report(args.image, rules_file=args.rules_file)
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise LaminaError(f"Could not open file {str(output)!r}: {exc.strerror}") from exc
    print(output)


@command(
    arg("image_a"),
    arg("image_b", nargs="?"),
    arg("--layer", type=int, help="Compare layer N of IMAGE_A with its parent."),
    arg("--unified", action="store_true", help="Show text diffs of changed text files."),
    _TABLE_OR_JSON,
)
def image_diff(ctx: Context, args: Namespace) -> None:
    """Compare two images' trees, or a layer with its parent: A added, C changed, D deleted."""
    result = ctx.engine.forensics.diff(
        args.image_a, args.image_b, layer=args.layer, unified=args.unified
    )
    if args.fmt == "json":
        json_out([e.json() for e in result.entries])
        return
    for e in result.entries:
        line = f"{e.change} {printable('/' + e.path)}"
        if e.changed:
            line += f"  ({', '.join(e.changed)}: {e.before} => {e.after})"
        print(line)
        if e.unified:
            sys.stdout.write(e.unified)
