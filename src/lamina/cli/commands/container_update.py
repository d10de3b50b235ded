"""``lamina update`` (``container update``): Docker 20.10's ``docker update`` for the resource
limits lamina sets at create (``-m``, ``--memory-swap``, ``--cpus``, ``-c``, ``--pids-limit``,
``--cpuset-cpus``, ``--cpuset-mems``) and three that only an update sets here
(``--cpu-period``, ``--cpu-quota``, ``--memory-reservation``), each kept for the container's
later starts too.

Its flags are parsed by create's parsers (:mod:`lamina.engine.container_resources`); what
Docker's CLI does not send (a flag of 0) changes nothing. The names that were updated are
printed as given, one a line; each failure is reported and the status is 1 if any failed,
as Docker's (whose daemon refusals all exit 1). Docker's ``--restart`` is left out (lamina
has no restart policies), and so are ``--kernel-memory`` (Docker records it and warns that it
is deprecated: the kernel ignores it), ``--blkio-weight`` and ``--cpu-rt-*`` (this host's
kernel has no such cgroup files; Docker warns and drops the first, records the others).
"""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Final

from lamina.cli.command import arg, command
from lamina.cli.context import Context
from lamina.errors import LaminaError, UsageError

if TYPE_CHECKING:
    from lamina.engine.container_update import Limits

# The flags' dests: at least one must be given, as Docker's CLI asks.
_FLAGS: Final = (
    *("cpu_period", "cpu_quota", "cpu_shares", "cpus", "memory", "memory_reservation"),
    *("memory_swap", "pids_limit", "cpuset_cpus", "cpuset_mems"),
)


def _limits(args: Namespace) -> Limits:
    """The update as Docker's CLI sends it: a flag of 0 (or not given) is no change."""
    from lamina.engine import container_resources as res
    from lamina.engine.container_update import Limits

    return Limits(
        memory=res.parse_bytes(args.memory) if args.memory is not None else 0,
        memory_swap=res.parse_swap(args.memory_swap) if args.memory_swap is not None else 0,
        memory_reservation=(
            res.parse_bytes(args.memory_reservation, flag="--memory-reservation")
            if args.memory_reservation is not None
            else 0
        ),
        nano_cpus=res.parse_cpus(args.cpus) if args.cpus is not None else 0,
        cpu_shares=args.cpu_shares or 0,
        cpu_period=args.cpu_period or 0,
        cpu_quota=args.cpu_quota or 0,
        cpuset_cpus=args.cpuset_cpus or "",
        cpuset_mems=args.cpuset_mems or "",
        pids_limit=args.pids_limit or None,  # Docker's CLI sends none for 0
    )


@command(
    arg("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period."),
    arg("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota."),
    arg("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)."),
    arg("--cpus", help="Number of CPUs (1.5, 1/2)."),
    arg("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
    arg("--cpuset-mems", help="Memory nodes in which to allow execution (0-3, 0,1)."),
    arg("-m", "--memory", help="Memory limit (bytes, or with a unit: 512m, 1g; at least 6m)."),
    arg("--memory-reservation", help="Memory soft limit (as -m)."),
    arg(
        "--memory-swap",
        help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap.",
    ),
    arg("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)."),
    arg("containers", nargs="+", metavar="CONTAINER"),
)
def update(ctx: Context, args: Namespace) -> None:
    """Update the resource limits of one or more containers: a running one (a paused one too)
    gets them at once, a stopped or created one at its next start."""
    if all(getattr(args, name) is None for name in _FLAGS):
        exc = UsageError("you must provide one or more flags when using this command")
        exc.exit_status = 1  # Docker's CLI: a plain error, not a flag error
        raise exc
    limits = _limits(args)

    def update_one(ref: str) -> None:
        try:
            ctx.engine.containers.update(ref, limits)
        except LaminaError as exc:
            exc.exit_status = 1  # whatever the daemon refused, as Docker's
            raise

    ctx.each(args.containers, update_one, echo=True)
