"""Container commands, docker-shaped: create, start, run, stop, kill, rm, logs, exec, container
prune and the rest of a container's life (ps is :mod:`~lamina.cli.commands.ps`; mount, diff,
commit, export and cp :mod:`~lamina.cli.commands.container_files`).

Failures exit as Docker 20.10's do (:func:`_docker_status` holds the rules); a verb of several
names acts on each and reports each failure (:meth:`Context.each`).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from argparse import REMAINDER, Namespace
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from lamina.cli.command import arg, command, target_and_command
from lamina.cli.context import Context, print_error
from lamina.cli.render import inspect_each, print_rows, table
from lamina.errors import (
    AmbiguousIdError,
    ConflictError,
    ContainerNotFoundError,
    LaminaError,
    NotATerminalError,
    UsageError,
)

if TYPE_CHECKING:
    from lamina.engine.container_config import CreateOptions, StopTimeout

# docker's usage line: options end at IMAGE; what follows it is the container's command.
_RUN_USAGE = "%(prog)s [OPTIONS] IMAGE [COMMAND] [ARG...]"
_DETACH_KEYS = arg(
    "--detach-keys", help="Override the key sequence for detaching a container (ctrl-p,ctrl-q)."
)


@contextlib.contextmanager
def _docker_status(
    verb: Literal["run", "create", "start", "exec", "exec-detached"],
) -> Iterator[None]:
    """The status of a failed ``verb``, as Docker 20.10's (the success statuses are the
    container's own, for ``run``, ``start -a`` and ``exec``):

    - ``run``: 126/127 when the command cannot be invoked / is not found, else 125 (the CLI's
      own status for whatever its create or start refused);
    - ``create``, ``start`` (and ``restart``): 1, whatever the daemon refused -- a name in use
      or invalid, no command, a command that is not found (the container keeps that in
      ``State``);
    - ``exec``: 1 when there is no running container to run in, else 126 (the status the
      daemon gives an exec that did not start: command not found or not executable, unknown
      user, bad working dir);
    - ``exec -d``: 1, whatever kept it from starting (the daemon's error: the CLI waits for
      no exit code).

    ``the input device is not a TTY`` stays 1 everywhere."""
    try:
        yield
    except NotATerminalError:
        raise
    except LaminaError as exc:
        if verb == "run":
            exc.exit_status = exc.exit_status if exc.exit_status in (126, 127) else 125
        elif verb == "exec":
            no_container = (ContainerNotFoundError, AmbiguousIdError, ConflictError)
            exc.exit_status = 1 if isinstance(exc, no_container) else 126
        else:
            exc.exit_status = 1
        raise


_ENV = arg("-e", "--env", action="append", default=[], help="Set an environment variable (K=V).")
_ENV_FILE = arg(
    "--env-file",
    dest="env_files",
    action="append",
    default=[],
    help="Read environment variables from a file (K=V lines).",
)
_CREATE_ARGS = (
    arg("--name", help="Assign a name to the container."),
    arg("--cidfile", default="", help="Write the container ID to the file (a new one)."),
    _ENV,
    _ENV_FILE,
    arg("-l", "--label", dest="labels", action="append", default=[], help="Set a label (K=V)."),
    arg(
        "--label-file",
        dest="label_files",
        action="append",
        default=[],
        help="Read labels from a file (K=V lines).",
    ),
    arg("-w", "--workdir", help="Working directory inside the container."),
    arg("-u", "--user", help="Username or UID (format: name|uid[:group|gid])."),
    arg(
        "-v",
        "--volume",
        dest="volumes",
        action="append",
        default=[],
        help="Bind mount or volume: [SRC:]DST[:ro].",
    ),
    arg(
        "--mount",
        dest="mounts",
        action="append",
        default=[],
        help="Attach a filesystem mount: type=bind|volume|tmpfs,source=,target=,readonly,"
        "bind-propagation=,volume-nocopy,volume-label=,tmpfs-size=,tmpfs-mode=",
    ),
    arg("--tmpfs", action="append", default=[], help="Mount a tmpfs: /path[:options]."),
    arg(
        "--volumes-from",
        action="append",
        default=[],
        help="Mount the volumes and binds of a container: CONTAINER[:ro|rw].",
    ),
    arg("--entrypoint", help="Overwrite the image's entrypoint."),
    arg("--hostname", help="Container host name."),
    arg("--domainname", default="", help="Container NIS domain name."),
    arg(
        "--add-host",
        action="append",
        default=[],
        help="Add a line to /etc/hosts (NAME:IP).",
    ),
    arg("--dns", action="append", default=[], help="Set a DNS server (IP) in /etc/resolv.conf."),
    arg("--dns-search", action="append", default=[], help="Set a DNS search domain."),
    arg("--dns-option", action="append", default=[], help="Set a DNS option."),
    arg("--network", "--net", choices=["none", "host"], default="none", help="(default: none)"),
    arg("--pid", default="", help="PID namespace: host, or container:NAME (another's)."),
    arg(
        "--ipc",
        default="",
        help="IPC mode: private (default), shareable, none, host, or container:NAME.",
    ),
    arg("--uts", default="", help="UTS namespace: host."),
    arg(
        "--sysctl",
        dest="sysctls",
        action="append",
        default=[],
        help="Set a namespaced kernel parameter: KEY=VALUE (net.*, kernel.shm*, kernel.msg*, "
        "kernel.sem, fs.mqueue.*).",
    ),
    arg(
        "--group-add",
        action="append",
        default=[],
        help="Add a supplementary group (a name in the image's /etc/group, or a number).",
    ),
    arg(
        "--ulimit",
        dest="ulimits",
        action="append",
        default=[],
        help="Set a ulimit: NAME=SOFT[:HARD] (nofile, nproc, core, ...; -1: unlimited).",
    ),
    arg("--shm-size", help="Size of /dev/shm (64m: Docker's default)."),
    arg("--privileged", action="store_true", help="Give extended privileges."),
    arg("--cap-add", action="append", default=[], help="Add a Linux capability."),
    arg("--cap-drop", action="append", default=[], help="Drop a Linux capability."),
    arg("--security-opt", action="append", default=[], help="no-new-privileges"),
    arg("--read-only", action="store_true", help="Mount the root filesystem read-only."),
    arg(
        "--init",
        action="store_true",
        help="Run an init (tini) as PID 1 that reaps and forwards signals.",
    ),
    arg("--log-driver", default="", help="Logging driver: json-file (default) or none."),
    arg(
        "--log-opt",
        dest="log_opts",
        action="append",
        default=[],
        help="Log driver option: max-size=SIZE (10m: 10 MB), max-file=N (rotated json-file).",
    ),
    arg("--stop-signal", help="Signal to stop the container (default: the image's, or TERM)."),
    arg(
        "--stop-timeout",
        type=int,
        help="Seconds stop and restart wait before SIGKILL when not given -t (default 10; "
        "negative: wait for the exit).",
    ),
    arg("-i", "--interactive", action="store_true", help="Keep STDIN open."),
    arg("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY."),
    # Resource limits (cgroups, through runc), parsed in _options as Docker's CLI parses them.
    arg("-m", "--memory", help="Memory limit (bytes, or with a unit: 512m, 1g; at least 6m)."),
    arg(
        "--memory-swap",
        help="Memory plus swap limit (as -m; -1: unlimited swap; default: twice -m).",
    ),
    arg("--cpus", help="Number of CPUs (1.5, 1/2)."),
    arg("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)."),
    arg("--pids-limit", type=int, default=0, help="Process limit (0 or -1: unlimited)."),
    arg("--oom-kill-disable", action="store_true", help="Disable the OOM killer."),
    arg("--oom-score-adj", help="Tune the host's OOM preferences (-1000 to 1000)."),
    arg("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)."),
    arg("--cpuset-mems", default="", help="Memory nodes in which to allow execution (0-3, 0,1)."),
    arg(
        "--device",
        dest="devices",
        action="append",
        default=[],
        help="Add a host device to the container: HOST[:CONTAINER][:PERMS] (PERMS: of rwm).",
    ),
    arg(
        "--device-cgroup-rule",
        dest="device_cgroup_rules",
        action="append",
        default=[],
        help="Add a rule to the cgroup allowed devices list: 'c|b|a MAJOR:MINOR rwm' (*: any).",
    ),
    target_and_command("image"),
)


def _options(args: Namespace, *, detach: bool = False, auto_remove: bool = False) -> CreateOptions:
    from lamina.engine.container_config import CreateOptions, read_kv_file

    # As docker's CLI: the files first, then the flags, which override them by key. A bare
    # KEY line of an env file is taken from lamina's environment (as -e KEY); of a label file,
    # dropped (where -l KEY sets an empty label).
    env = [e for f in args.env_files for e in read_kv_file(f, what="env file")]
    labels = [
        lb for f in args.label_files for lb in read_kv_file(f, what="label file") if "=" in lb
    ]
    limits = {"memory": 0, "memory_swap": 0, "nano_cpus": 0}
    if args.memory is not None or args.memory_swap is not None or args.cpus is not None:
        from lamina.engine import container_resources as res  # only for these flags

        if args.memory is not None:
            limits["memory"] = res.parse_bytes(args.memory)
        if args.memory_swap is not None:
            limits["memory_swap"] = res.parse_swap(args.memory_swap)
        if args.cpus is not None:
            limits["nano_cpus"] = res.parse_cpus(args.cpus)
    _warn_on_localhost_dns(args.dns)
    oom_kill_disable, oom_score_adj = False, 0
    if args.oom_kill_disable or args.oom_score_adj is not None:
        from lamina.engine import oom_args  # only for these flags

        if args.oom_score_adj is not None:
            oom_score_adj = oom_args.parse_score_adj(args.oom_score_adj)
        oom_kill_disable, said = oom_args.warnings(
            oom_kill_disable=args.oom_kill_disable, memory=limits["memory"]
        )
        for warning in said:
            print(f"WARNING: {warning}", file=sys.stderr)
    return CreateOptions(
        oom_kill_disable=oom_kill_disable,
        oom_score_adj=oom_score_adj,
        **limits,
        cpu_shares=args.cpu_shares,
        pids_limit=args.pids_limit,
        cpuset_cpus=args.cpuset_cpus,
        cpuset_mems=args.cpuset_mems,
        image=args.image,
        command=tuple(args.command),
        name=args.name,
        cidfile=args.cidfile,
        env=(*env, *args.env),
        labels=(*labels, *args.labels),
        read_only=args.read_only,
        init=args.init,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        workdir=args.workdir,
        user=args.user,
        volumes=tuple(args.volumes),
        mounts=tuple(args.mounts),
        tmpfs=tuple(args.tmpfs),
        volumes_from=tuple(args.volumes_from),
        add_host=tuple(args.add_host),
        dns=tuple(args.dns),
        dns_search=tuple(args.dns_search),
        dns_option=tuple(args.dns_option),
        group_add=tuple(args.group_add),
        ulimits=tuple(args.ulimits),
        shm_size=args.shm_size,
        entrypoint=args.entrypoint,
        hostname=args.hostname,
        domainname=args.domainname,
        log_driver=args.log_driver,
        log_opts=tuple(args.log_opts),
        network=args.network,
        pid=args.pid,
        ipc=args.ipc,
        uts=args.uts,
        sysctls=tuple(args.sysctls),
        privileged=args.privileged,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        security_opt=tuple(args.security_opt),
        devices=tuple(args.devices),
        device_cgroup_rules=tuple(args.device_cgroup_rules),
        tty=args.tty,
        interactive=args.interactive,
        detach=detach,
        auto_remove=auto_remove,
    )


def _warn_on_localhost_dns(servers: list[str]) -> None:
    """docker's CLI warning for the first loopback ``--dns`` (it is the container's own)."""
    if servers:
        from lamina.engine.dns_args import check_dns, localhost_dns

        local = localhost_dns([check_dns(ip) for ip in servers])
        if local is not None:
            print(
                f"WARNING: Localhost DNS setting (--dns={local}) may fail in containers.",
                file=sys.stderr,
            )


@command(*_CREATE_ARGS, usage=_RUN_USAGE)
def create(ctx: Context, args: Namespace) -> None:
    """Create a container (layers, volumes, bundle files) without starting it."""
    with _docker_status("create"):
        rec = ctx.engine.containers.create(_options(args))
    print(rec.id)


@command(
    arg(
        "--rm", dest="auto_remove", action="store_true", help="Remove the container when it exits."
    ),
    arg("-d", "--detach", action="store_true", help="Run in the background; print the id."),
    _DETACH_KEYS,
    *_CREATE_ARGS,
    usage=_RUN_USAGE,
)
def run(ctx: Context, args: Namespace) -> None:
    """Create and start a container; exit with its status."""
    with _docker_status("run"):
        rec, code = ctx.engine.containers.run(
            _options(args, detach=args.detach, auto_remove=args.auto_remove),
            detach_keys=args.detach_keys,
        )
    if args.detach:
        print(rec.id)
    ctx.exit_status = code or 0  # None: detached with the keys, as Docker's 0


@command(
    arg("-a", "--attach", action="store_true", help="Attach output and exit with its status."),
    arg("-i", "--interactive", action="store_true", help="Attach STDIN."),
    _DETACH_KEYS,
    arg("containers", nargs="+", metavar="CONTAINER"),
)
def start(ctx: Context, args: Namespace) -> None:
    """Start one or more created or stopped containers; with -a, attach to one (a running
    one too: its output from then on) and exit with its status."""
    attach, containers = args.attach, args.containers
    if attach and len(containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")

    def start_one(ref: str) -> None:
        with _docker_status("start"):
            _, code = ctx.engine.containers.start(
                ref, attach=attach, interactive=args.interactive, detach_keys=args.detach_keys
            )
        if attach:
            ctx.exit_status = code or 0
        else:
            print(ref)

    ctx.each(containers, start_one)


_STOP_TIME = arg(
    "-t",
    "--time",
    dest="timeout",
    type=int,
    help="Seconds before SIGKILL; negative: wait for the exit (default: the container's "
    "--stop-timeout, else 10)",
)


def _stop_timeout(seconds: int | None) -> float | StopTimeout | None:
    """Docker's ``--time``: a negative one waits for the exit indefinitely (None); not given,
    the container's own ``--stop-timeout`` (as Docker's CLI, which then sends no timeout)."""
    from lamina.engine.container_config import StopTimeout

    if seconds is None:
        return StopTimeout.CONTAINER
    return None if seconds < 0 else float(seconds)


@command(_STOP_TIME, arg("containers", nargs="+", metavar="CONTAINER"))
def stop(ctx: Context, args: Namespace) -> None:
    """Stop running containers (the stop signal, then SIGKILL after --time seconds)."""
    stop_one = functools.partial(ctx.engine.containers.stop, timeout=_stop_timeout(args.timeout))
    ctx.each(args.containers, stop_one, echo=True)


@command(_STOP_TIME, arg("containers", nargs="+", metavar="CONTAINER"))
def restart(ctx: Context, args: Namespace) -> None:
    """Restart containers: stop (the stop signal, SIGKILL after --time seconds), then start."""
    timeout = _stop_timeout(args.timeout)

    def restart_one(ref: str) -> None:
        with _docker_status("start"):
            ctx.engine.containers.restart(ref, timeout=timeout)
        print(ref)

    ctx.each(args.containers, restart_one)


@command(arg("containers", nargs="+", metavar="CONTAINER"))
def wait(ctx: Context, args: Namespace) -> None:
    """Block until containers stop, then print their exit codes."""
    ctx.each(args.containers, lambda ref: print(ctx.engine.containers.wait(ref), flush=True))


@command(
    arg("container"),
    arg("ps_args", nargs=REMAINDER, metavar="PS_OPTIONS", help="Default: -ef."),
    usage="%(prog)s CONTAINER [ps OPTIONS]",
)
def top(ctx: Context, args: Namespace) -> None:
    """Display the running processes of a container (the host's ps, filtered to it)."""
    titles, rows = ctx.engine.containers.top(args.container, args.ps_args)
    table(titles, rows, minwidth=20)


@command(arg("container"), arg("new_name", metavar="NEW_NAME"))
def rename(ctx: Context, args: Namespace) -> None:
    """Rename a container."""
    ctx.engine.containers.rename(args.container, args.new_name)


@command(
    arg("-s", "--signal", dest="sig", default="SIGKILL", help="(default: %(default)s)"),
    arg("containers", nargs="+", metavar="CONTAINER"),
)
def kill(ctx: Context, args: Namespace) -> None:
    """Send a signal to running containers."""
    kill_one = functools.partial(ctx.engine.containers.kill, signal=args.sig)
    ctx.each(args.containers, kill_one, echo=True)


# Docker's stats column titles (cli/command/container/formatter_stats.go).
_STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


@command(
    arg(
        "-a",
        "--all",
        dest="all_",
        action="store_true",
        help="Show all containers, not only running ones.",
    ),
    arg("--no-stream", action="store_true", help="Print one sample and exit."),
    arg("--no-trunc", action="store_true", help="Don't truncate output."),
    arg("--format", dest="fmt", help="table, json, or a Go template."),
    arg("containers", nargs="*", metavar="CONTAINER"),
)
def stats(ctx: Context, args: Namespace) -> None:
    """Display containers' resource use (CPU, memory, block I/O, PIDs), refreshed every
    second until interrupted; --no-stream prints one sample."""
    from lamina.cli.render import bytes_size, human_size

    while True:
        rows = ctx.engine.containers.stats(args.containers, all_=args.all_)
        given = args.containers or [r.id[:12] for r in rows]
        records = [
            {
                "BlockIO": f"{human_size(r.block_read)} / {human_size(r.block_write)}",
                "CPUPerc": f"{r.cpu_percent:.2f}%",
                "Container": ref,
                "ID": r.id if args.no_trunc else r.id[:12],
                "MemPerc": f"{r.memory_percent:.2f}%",
                "MemUsage": f"{bytes_size(r.memory)} / {bytes_size(r.memory_limit)}",
                "Name": r.name,
                "NetIO": "0B / 0B",  # see lamina.engine.container_stats
                "PIDs": str(r.pids),
            }
            for r, ref in zip(rows, given, strict=True)
        ]
        if not args.no_stream:
            print("\033[2J\033[H", end="")  # clear the screen, as docker stats redraws
        print_rows(
            args.fmt,
            records,
            default_columns=[
                "ID",
                "Name",
                "CPUPerc",
                "MemUsage",
                "MemPerc",
                "NetIO",
                "BlockIO",
                "PIDs",
            ],
            headers=_STATS_HEADERS,
        )
        if args.no_stream:
            return
        sys.stdout.flush()


@command(arg("containers", nargs="+", metavar="CONTAINER"))
def pause(ctx: Context, args: Namespace) -> None:
    """Pause every process of running containers (the cgroup freezer, as runc pause)."""
    ctx.each(args.containers, ctx.engine.containers.pause, echo=True)


@command(arg("containers", nargs="+", metavar="CONTAINER"))
def unpause(ctx: Context, args: Namespace) -> None:
    """Resume every process of paused containers."""
    ctx.each(args.containers, ctx.engine.containers.unpause, echo=True)


@command(
    arg("-f", "--force", action="store_true", help="Kill a running container first."),
    arg("-v", "--volumes", action="store_true", help="Also remove its anonymous volumes."),
    arg("containers", nargs="+", metavar="CONTAINER"),
)
def rm(ctx: Context, args: Namespace) -> None:
    """Remove containers (and their layers and mounts). With -f a container that is not
    there is reported but is no failure, as Docker's ``rm -f``."""

    def remove(ref: str) -> None:
        try:
            ctx.engine.containers.remove(ref, force=args.force, volumes=args.volumes)
        except ContainerNotFoundError as exc:
            if not args.force:
                raise
            print_error(exc)
            return
        print(ref)

    ctx.each(args.containers, remove)


@command(
    arg("-f", "--follow", action="store_true", help="Follow log output until the container exits."),
    arg("-t", "--timestamps", action="store_true", help="Show timestamps."),
    arg("-n", "--tail", default="all", help='Lines to show from the end ("all", or a number).'),
    arg("--since", help="Only entries since a time (RFC 3339, Unix seconds, or a duration: 10m)."),
    arg("--until", help="Only entries until a time (RFC 3339, Unix seconds, or a duration)."),
    arg("container"),
)
def logs(ctx: Context, args: Namespace) -> None:
    """Show a container's output (stdout to stdout, stderr to stderr)."""
    if args.tail == "all":
        tail = None
    elif args.tail.lstrip("-").isascii() and args.tail.lstrip("-").isdigit():
        # As docker: a negative count is all; so is one past any log's length.
        tail = int(args.tail) if 0 <= int(args.tail) <= sys.maxsize else None
    else:
        raise UsageError(f"invalid --tail {args.tail!r}: a number or all")
    since = until = None
    if args.since or args.until:
        import time

        from lamina.engine.times import parse_point

        now = time.time()
        since = parse_point(args.since, now=now, flag="--since") if args.since else None
        until = parse_point(args.until, now=now, flag="--until") if args.until else None
    entries = ctx.engine.containers.logs(
        args.container, follow=args.follow, tail=tail, since=since, until=until
    )
    for entry in entries:
        text = f"{entry.time} {entry.line}" if args.timestamps else entry.line
        stream = sys.stderr if entry.stream == "stderr" else sys.stdout
        stream.write(text)
        stream.flush()


@command(
    _ENV,
    _ENV_FILE,
    arg("--privileged", action="store_true", help="Give the command extended privileges."),
    arg("-w", "--workdir", help="Working directory inside the container."),
    arg("-u", "--user", help="Username or UID (format: name|uid[:group|gid])."),
    arg("-i", "--interactive", action="store_true", help="Keep STDIN open."),
    arg("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY."),
    arg(
        "-d",
        "--detach",
        action="store_true",
        help="Detached mode: run the command in the background (its output is dropped).",
    ),
    target_and_command("container", required_command=True),
    usage="%(prog)s [OPTIONS] CONTAINER COMMAND [ARG...]",
)
def exec_(ctx: Context, args: Namespace) -> None:
    """Run a command in a running container; exit with its status (with -d: start it, leave
    it running and exit 0 at once)."""
    from lamina.engine.container_config import read_kv_file

    # As docker's CLI: the files first, then -e, which overrides them by key; an unreadable
    # file is refused before the container is looked at (status 1, as Docker's).
    with _docker_status("exec-detached"):
        env = [e for f in args.env_files for e in read_kv_file(f, what="env file")]
    with _docker_status("exec-detached" if args.detach else "exec"):
        code = ctx.engine.containers.exec(
            args.container,
            tuple(args.command),
            env=(*env, *args.env),
            privileged=args.privileged,
            workdir=args.workdir,
            user=args.user,
            tty=args.tty,
            interactive=args.interactive,
            detach=args.detach,
        )
    ctx.exit_status = code


@command(
    arg("-f", "--force", action="store_true", help="Do not prompt (lamina never prompts)."),
    arg(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        help="until=TIME|DURATION, label=K[=V], label!=K[=V]",
    ),
)
def container_prune(ctx: Context, args: Namespace) -> None:
    """Remove all stopped containers."""
    from lamina.cli.render import human_size, print_deleted

    removed, reclaimed = ctx.engine.containers.prune(args.filters)
    print_deleted("Containers", removed)
    print(f"Total reclaimed space: {human_size(reclaimed)}")


@command(
    arg("-f", "--format", dest="fmt", help="json, or a Go template."),
    arg("-s", "--size", action="store_true", help="Display total file sizes (SizeRw, SizeRootFs)."),
    arg("containers", nargs="+", metavar="CONTAINER"),
)
def container_inspect(ctx: Context, args: Namespace) -> None:
    """Show containers as JSON (Docker API 1.41's shape)."""
    inspect_each(
        ctx,
        args.fmt,
        args.containers,
        lambda ref: ctx.engine.containers.inspect(ref, size=args.size),
    )
