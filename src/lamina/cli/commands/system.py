"""System commands: info, verify, df, prune."""

from __future__ import annotations

import sys
from argparse import Namespace

from lamina.cli.command import arg, command
from lamina.cli.context import Context, confirm
from lamina.cli.render import human_size, json_out, print_deleted
from lamina.errors import InvalidFilterError, UsageError


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
    arg("-v", "--verbose", action="store_true", help="Show per-image shared and unique sizes."),
    arg("--format", dest="fmt", choices=["table", "json"], default="table"),
)
def df(ctx: Context, args: Namespace) -> None:
    """Show disk usage (layers shared by several images are counted once)."""
    from lamina.cli.render import since, table

    usage = ctx.engine.system.df()
    active = sum(1 for i in usage.images if i.containers)
    pct = (100 * usage.images_reclaimable // usage.images_total) if usage.images_total else 0
    rows = [
        {
            "Type": "Images",
            "TotalCount": str(len(usage.images)),
            "Active": str(active),
            "Size": human_size(usage.images_total),
            "Reclaimable": f"{human_size(usage.images_reclaimable)} ({pct}%)",
        }
    ]
    if args.fmt == "json":
        for r in rows:
            json_out(r, indent=None)
        return
    table(
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]] for r in rows],
    )
    if args.verbose:
        print("\nImages space usage:\n")
        body = []
        for i in usage.images:
            for name in i.names or ("<none>:<none>",):
                repo, _, tag = name.rpartition(":")
                body.append(
                    [
                        repo,
                        tag,
                        i.id[7:19],
                        since(i.created),
                        human_size(i.size),
                        human_size(i.shared),
                        human_size(i.unique),
                        str(i.containers),
                    ]
                )
        table(
            [
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS",
            ],
            body,
        )


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
