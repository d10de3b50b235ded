"""``ps`` (``container ls``): Docker's columns, its ``--format`` fields and their truncation,
and the size probe that makes a template showing ``.Size`` measure sizes without ``-s``."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Any

from lamina.cli.command import arg, command
from lamina.cli.context import Context
from lamina.cli.render import print_rows, since

if TYPE_CHECKING:
    from lamina.engine.container_list import ContainerSummary


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
}


def _go_quote(text: str) -> str:
    """Go's ``strconv.Quote``, which Docker's ps formatter puts the command through."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _ps_record(s: ContainerSummary, *, no_trunc: bool) -> dict[str, Any]:
    """The fields of Docker's ps formatter (``--format '{{json .}}'`` prints them sorted), and
    its method ``{{.Label "KEY"}}`` (the label's value, "" when unset)."""
    from lamina.cli.template import Record

    labels = dict(s.labels)
    return Record(
        container_fields(s, no_trunc=no_trunc),
        {"Label": lambda key: labels.get(str(key), "")},
        {"Label": _label_header},
    )


def _label_header(key: object) -> str:
    """docker ps's header for ``{{.Label "com.example.my-key"}}``: "my key"."""
    return str(key).rsplit(".", 1)[-1].replace("-", " ").replace("_", " ")


def container_fields(s: ContainerSummary, *, no_trunc: bool) -> dict[str, Any]:
    """Docker's container formatter's fields (ps, and ``system df -v``'s containers)."""
    from datetime import datetime

    created = datetime.fromtimestamp(s.created).astimezone()
    return {
        "Command": _go_quote(s.command if no_trunc else _ellipsis(s.command, 20)),
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S %z %Z"),
        "ID": s.id if no_trunc else s.id[:12],
        # An image id (the name no longer leads to it) is cut as Docker's TruncateID cuts it.
        "Image": s.image[7:19] if s.image.startswith("sha256:") and not no_trunc else s.image,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())),
        "LocalVolumes": str(len(s.mounts)),
        "Mounts": ",".join(m if no_trunc else _ellipsis(m, 15) for m in s.mounts),
        "Names": s.name,
        "Networks": s.network,
        "Ports": "",
        "RunningFor": since(s.created_at),
        "Size": _size_text(s),
        "State": s.state.docker_status,
        "Status": s.status,
    }


def _size_text(s: ContainerSummary) -> str:
    """docker ps's SIZE: the rw layer's, then "(virtual ...)" with the image's added (decimal
    units, 3 significant digits); "0B" when the sizes were not asked for, as Docker's."""
    from lamina.cli.render import human_size

    if s.size is None:
        return "0B"
    text = human_size(s.size.rw)
    return f"{text} (virtual {human_size(s.size.root_fs)})" if s.size.root_fs > 0 else text


_SIZE_PROBE = "lamina-size-probe-5b1e"  # prints as itself in text and in JSON


def _template_uses_size(fmt: str) -> bool:
    """Whether ``--format`` shows ``.Size`` (so ``ps`` measures sizes without ``-s``, as
    docker's CLI does, moby/moby#24696): it is looked up, or it appears in the output (as
    ``{{json .}}`` prints every field)."""
    if fmt == "json":
        return True
    if fmt == "table":
        return False
    from lamina.cli.template import Record, TemplateError, render_template

    asked: list[str] = []

    class Probe(Record):
        def get(self, key: str, default: Any = None) -> Any:
            asked.append(key)
            return super().get(key, default)

    fields = dict.fromkeys(_PS_HEADERS, "")
    fields["Size"] = _SIZE_PROBE
    try:
        out = render_template(fmt, Probe(fields, {"Label": lambda key: ""}))
    except TemplateError:
        return False  # the real rendering reports it
    return "Size" in asked or _SIZE_PROBE in out


@command(
    arg(
        "-a",
        "--all",
        dest="all_",
        action="store_true",
        help="Show all containers, not only running.",
    ),
    arg("-q", "--quiet", action="store_true", help="Only show container IDs."),
    arg("--no-trunc", action="store_true", help="Don't truncate output."),
    arg(
        "-f",
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help="Filter (KEY=VALUE, repeatable): id, name (a regexp), status, exited, ancestor, "
        "before, since, label, volume, network, health, is-task, publish, expose, isolation.",
    ),
    arg("-n", "--last", type=int, default=-1, help="Show n last created containers (all states)."),
    arg("-l", "--latest", action="store_true", help="Show the latest created container."),
    arg("-s", "--size", action="store_true", help="Display total file sizes."),
    arg("--format", dest="fmt", help="json, or a Go template."),
)
def ps(ctx: Context, args: Namespace) -> None:
    """List containers."""
    last = 1 if args.last == -1 and args.latest else args.last
    size = not args.quiet and (
        args.size or (args.fmt is not None and _template_uses_size(args.fmt))
    )
    pairs: list[tuple[str, str]] = []
    if args.filters:  # plain ps loads no filter module
        from lamina.engine.filters import split_filters

        pairs = split_filters(args.filters)
    rows = ctx.engine.containers.list(all_=args.all_, filters=pairs, last=last, size=size)
    no_trunc = args.no_trunc
    if args.quiet:
        for r in rows:
            print(r.id if no_trunc else r.id[:12])
        return
    records = [_ps_record(r, no_trunc=no_trunc) for r in rows]
    print_rows(
        args.fmt,
        records,
        default_columns=[
            *("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"),
            *(("Size",) if args.size else ()),
        ],
        headers=_PS_HEADERS,
    )


# Docker's ps column titles (cli/command/formatter/container.go).
_PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "State": "STATE",
    "Ports": "PORTS",
    "Names": "NAMES",
    "Labels": "LABELS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "Size": "SIZE",
}
