"""System commands: info, verify, df, prune."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import TYPE_CHECKING

from lamina.cli.command import arg, command
from lamina.cli.context import Context, confirm
from lamina.cli.render import human_size, json_out, print_deleted
from lamina.errors import InvalidFilterError, UsageError

if TYPE_CHECKING:
    from lamina.engine.system import DiskUsage


@command(arg("--format", dest="fmt", choices=["text", "json"], default="text"))
def info(ctx: Context, args: Namespace) -> None:
    """Show the store root, driver, counts and sizes."""
    data = ctx.engine.system.info()
    if args.fmt == "json":
        json_out(data)
        return
    for key, value in data.items():
        if isinstance(value, int) and key.endswith(("Size", "Bytes")):
            print(f"{key}: {value} ({human_size(value)})")
        else:
            print(f"{key}: {value}")


@command(
    arg("image", nargs="?"),
    arg(
        "--deep",
        action="store_true",
        help="Also walk every unpacked layer dir and check it against the file index.",
    ),
    arg(
        "--repair",
        action="store_true",
        help="With --deep: re-extract tampered layers from their verified blobs.",
    ),
    arg("--format", dest="fmt", choices=["text", "json"], default="text"),
)
def verify(ctx: Context, args: Namespace) -> None:
    """Re-hash every blob and check the store's records; exit 1 naming each problem.

    With --deep (implied by IMAGE) also compare each unpacked layer (of IMAGE, or all) with its
    file index: modified, added, deleted, chmod-ed, chown-ed and xattr-changed files are named
    with their layer. --repair re-extracts a tampered layer (refused while mounted)."""
    image, deep, repair = args.image, args.deep, args.repair
    if repair and not (deep or image):
        raise UsageError("--repair needs --deep")
    if not (deep or image):
        problems = ctx.engine.system.verify()
        for p in problems:
            print(p)
        if problems:
            print(f"{len(problems)} problem(s) found", file=sys.stderr)
            ctx.exit_status = 1
        else:
            print("store verified: no problems", file=sys.stderr)
        return
    result = ctx.engine.forensics.verify_deep(image, repair=repair)
    findings = result.findings
    unrepaired = [f for lc in result.layers if not lc.repaired for f in lc.findings]
    if args.fmt == "json":
        json_out(
            {
                "StoreProblems": [str(p) for p in result.store_problems],
                "Layers": [
                    {
                        "ChainID": lc.chain_id,
                        "Dir": str(lc.directory),
                        "Entries": lc.files,
                        "BytesHashed": lc.bytes_hashed,
                        "Repaired": lc.repaired,
                        "Findings": [
                            {
                                "Issue": f.issue.value,
                                "Path": "/" + f.path,
                                "Expected": f.expected,
                                "Actual": f.actual,
                            }
                            for f in lc.findings
                        ],
                    }
                    for lc in result.layers
                ],
            }
        )
    else:
        for p in result.store_problems:
            print(p)
        for f in findings:
            print(f)
        for lc in result.layers:
            if lc.repaired:
                print(f"repaired: layer {lc.chain_id} re-extracted from its blob")
    print(
        f"{len(result.layers)} layer(s) walked, {len(findings)} finding(s), "
        f"{sum(1 for lc in result.layers if lc.repaired)} repaired, "
        f"{len(result.store_problems)} store problem(s)",
        file=sys.stderr,
    )
    if unrepaired or result.store_problems:
        ctx.exit_status = 1


@command(
    arg(
        "-v",
        "--verbose",
        action="store_true",
        help="Show each image, container and volume (--format is then ignored, as Docker's).",
    ),
    arg("--format", dest="fmt", help="json, or a Go template over the summary rows."),
)
def df(ctx: Context, args: Namespace) -> None:
    """Show disk usage: images (layers shared by several images counted once), containers'
    writable layers, local volumes, build cache."""
    from lamina.cli.render import print_rows

    usage = ctx.engine.system.df()
    if args.verbose:
        _df_verbose(usage)
        return
    busy = ("running", "paused", "restarting")
    active = [s.state.docker_status in busy for s in usage.containers]
    rw = [s.size.rw if s.size else 0 for s in usage.containers]
    rows = [
        _df_row(
            "Images",
            len(usage.images),
            sum(1 for i in usage.images if i.containers),
            usage.images_total,
            usage.images_reclaimable,
        ),
        _df_row(
            "Containers",
            len(usage.containers),
            sum(active),
            sum(rw),
            sum(size for size, on in zip(rw, active, strict=True) if not on),
        ),
        _df_row(
            "Local Volumes",
            len(usage.volumes),
            sum(1 for v in usage.volumes if v.links),
            sum(v.size for v in usage.volumes),
            sum(v.size for v in usage.volumes if not v.links),
        ),
        # lamina's build cache is its cached steps' images, as Docker's classic builder's; none
        # of their layers is theirs alone (a later step's image holds them all).
        {
            "Active": "0",
            "Reclaimable": "0B",
            "Size": "0B",
            "TotalCount": str(usage.build_cache),
            "Type": "Build Cache",
        },
    ]
    print_rows(
        args.fmt,
        rows,
        default_columns=["Type", "TotalCount", "Active", "Size", "Reclaimable"],
        headers={
            "Type": "TYPE",
            "TotalCount": "TOTAL",
            "Active": "ACTIVE",
            "Size": "SIZE",
            "Reclaimable": "RECLAIMABLE",
        },
    )


def _df_row(kind: str, total: int, active: int, size: int, reclaimable: int) -> dict[str, str]:
    """One summary row, as docker/cli's disk-usage contexts write it (units.HumanSize; the
    percentage only when there are bytes at all)."""
    text = human_size(reclaimable, digits=4)
    if size > 0:
        text += f" ({reclaimable * 100 // size}%)"
    # In the order of Go's JSON of them ({{json .}}): the keys sorted.
    return {
        "Active": str(active),
        "Reclaimable": text,
        "Size": human_size(size, digits=4),
        "TotalCount": str(total),
        "Type": kind,
    }


def _df_verbose(usage: DiskUsage) -> None:
    """``docker system df -v``: images (each once, by its first name), containers (their rw
    size only), volumes, then the build cache's total."""
    import msgspec

    from lamina.cli.commands.ps import container_fields
    from lamina.cli.render import parse_time, since, table
    from lamina.engine.container_list import ContainerSize

    print("Images space usage:\n")
    images = []
    for i in sorted(usage.images, key=lambda i: parse_time(i.created) or 0, reverse=True):
        repo, _, tag = i.names[0].rpartition(":") if i.names else ("<none>", "", "<none>")
        images.append(
            [
                repo,
                tag,
                i.id[7:19],
                since(i.created),
                human_size(i.size, digits=4),
                human_size(i.shared, digits=4),
                human_size(i.unique, digits=4),
                str(i.containers),
            ]
        )
    table(
        [
            *("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"),
            *("SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"),
        ],
        images,
    )
    print("\nContainers space usage:\n")
    columns = ("ID", "Image", "Command", "LocalVolumes", "Size", "RunningFor", "Status", "Names")
    containers = []
    for s in usage.containers:
        rw = s.size.rw if s.size else 0
        fields = container_fields(
            msgspec.structs.replace(s, size=ContainerSize(rw=rw, root_fs=0)), no_trunc=False
        )
        containers.append([str(fields[c]) for c in columns])
    table(
        [
            *("CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED"),
            *("STATUS", "NAMES"),
        ],
        containers,
    )
    print("\nLocal Volumes space usage:\n")
    table(
        ["VOLUME NAME", "LINKS", "SIZE"],
        [[v.name, str(v.links), human_size(v.size, digits=4)] for v in usage.volumes],
    )
    # Docker's table of BuildKit cache records follows; lamina keeps none (see df's row).
    print("\nBuild cache usage: 0B")


@command(
    arg("-a", "--all", dest="all_", action="store_true", help="Remove all unused images too."),
    arg("-f", "--force", action="store_true", help="Do not prompt for confirmation."),
    arg("--volumes", action="store_true", help="Prune anonymous volumes no container uses too."),
    arg(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help="until=TIME|DURATION, label=K[=V], label!=K[=V]",
    ),
)
def prune(ctx: Context, args: Namespace) -> None:
    """Remove stopped containers, dangling images (all unused with -a), with --volumes unused
    anonymous volumes, then the layers and blobs nothing references."""
    from lamina.engine.filters import CONTAINER_KEYS, PruneFilters

    spare = PruneFilters(args.filters, accepted=CONTAINER_KEYS)  # checked before anything goes
    if args.volumes and spare.has_until:
        raise InvalidFilterError('The "until" filter is not supported with "--volumes"')
    if not args.force:
        lines = ["all stopped containers"]
        if args.volumes:
            lines.append("all anonymous volumes not used by at least one container")
        lines.append(
            "all images without at least one container associated to them"
            if args.all_
            else "all dangling images"
        )
        lines.append("all layers and blobs no image uses")
        body = "".join(f"  - {line}\n" for line in lines)
        confirm(f"WARNING! This will remove:\n{body}\nAre you sure you want to continue?")
    removed, reclaimed = ctx.engine.containers.prune(args.filters)
    print_deleted("Containers", removed)
    if args.volumes:  # the filters were checked above: only label keys can be left
        volumes = ctx.engine.volumes.prune(filters=args.filters)
        reclaimed += volumes.reclaimed
        print_deleted("Volumes", volumes.names)
    result = ctx.engine.images.prune(all_=args.all_, filters=args.filters)
    reclaimed += result.reclaimed
    gc = ctx.engine.system.gc()
    print_deleted("Images", [f"{verb.lower()}: {what}" for verb, what in result.lines])
    print_deleted("Layers", gc.layers)
    print(f"Total reclaimed space: {human_size(reclaimed)}")
