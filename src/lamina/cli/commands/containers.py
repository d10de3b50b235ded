"""Container commands, docker-shaped: create, start, run, ps, stop, kill, rm, logs, exec,
container prune, mount, umount, diff, commit, export, cp.

``create``/``run``/``start`` exit as Docker's do: 125 when lamina failed, 126/127 when the
command cannot be invoked / is not found, else the container's own status.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from lamina.cli.context import Context, pass_ctx, set_exit_status
from lamina.cli.render import inspect_out, print_rows, since
from lamina.errors import LaminaError, UsageError

if TYPE_CHECKING:
    from lamina.engine.container_config import CreateOptions
    from lamina.engine.containers import ContainerSummary

_RUN_SETTINGS = {"allow_interspersed_args": False}


@contextlib.contextmanager
def _run_status() -> Iterator[None]:
    """Docker's run/create/start statuses: lamina's own failures become 125."""
    try:
        yield
    except LaminaError as exc:
        if exc.exit_status not in (126, 127):
            exc.exit_status = 125
        raise


def _create_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--name", help="Assign a name to the container."),
        click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V)."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: name|uid[:group|gid])."),
        click.option(
            "-v", "--volume", "volumes", multiple=True, help="Bind mount or volume: [SRC:]DST[:ro]."
        ),
        click.option("--entrypoint", help="Overwrite the image's entrypoint."),
        click.option("--hostname", help="Container host name."),
        click.option(
            "--network",
            "--net",
            type=click.Choice(["none", "host"]),
            default="none",
            show_default=True,
        ),
        click.option("--privileged", is_flag=True, help="Give extended privileges."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability."),
        click.option("--security-opt", multiple=True, help="no-new-privileges"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.argument("image"),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _options(
    kw: dict[str, Any], *, detach: bool = False, auto_remove: bool = False
) -> CreateOptions:
    from lamina.engine.container_config import CreateOptions

    return CreateOptions(
        image=kw["image"],
        command=tuple(kw["command"]),
        name=kw["name"],
        env=tuple(kw["env"]),
        workdir=kw["workdir"],
        user=kw["user"],
        volumes=tuple(kw["volumes"]),
        entrypoint=kw["entrypoint"],
        hostname=kw["hostname"],
        network=kw["network"],
        privileged=kw["privileged"],
        cap_add=tuple(kw["cap_add"]),
        cap_drop=tuple(kw["cap_drop"]),
        security_opt=tuple(kw["security_opt"]),
        tty=kw["tty"],
        interactive=kw["interactive"],
        detach=detach,
        auto_remove=auto_remove,
    )


@click.command("create", context_settings=_RUN_SETTINGS)
@_create_options
@pass_ctx
def create(ctx: Context, /, **kw: Any) -> None:
    """Create a container (layers, volumes, bundle files) without starting it."""
    with _run_status():
        rec = ctx.engine.containers.create(_options(kw))
    click.echo(rec.id)


@click.command("run", context_settings=_RUN_SETTINGS)
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the id.")
@_create_options
@pass_ctx
def run(ctx: Context, /, auto_remove: bool, detach: bool, **kw: Any) -> None:
    """Create and start a container; exit with its status."""
    with _run_status():
        rec, code = ctx.engine.containers.run(_options(kw, detach=detach, auto_remove=auto_remove))
    if detach:
        click.echo(rec.id)
    set_exit_status(code)


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach output and exit with its status.")
@click.option("-i", "--interactive", is_flag=True, help="Attach STDIN.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def start(ctx: Context, attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more created or stopped containers."""
    if attach and len(containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    for ref in containers:
        with _run_status():
            _, code = ctx.engine.containers.start(ref, attach=attach, interactive=interactive)
        if attach:
            set_exit_status(code)
        else:
            click.echo(ref)


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _ps_record(s: ContainerSummary, *, no_trunc: bool) -> dict[str, Any]:
    """The fields of Docker's ps formatter (``--format '{{json .}}'`` prints them sorted)."""
    from datetime import datetime

    created = datetime.fromtimestamp(s.created).astimezone()
    return {
        "Command": '"' + (s.command if no_trunc else _ellipsis(s.command, 20)) + '"',
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S %z %Z"),
        "ID": s.id if no_trunc else s.id[:12],
        "Image": s.image,
        "Labels": "",
        "LocalVolumes": str(len(s.mounts)),
        "Mounts": ",".join(m if no_trunc else _ellipsis(m, 15) for m in s.mounts),
        "Names": s.name,
        "Networks": "",
        "Ports": "",
        "RunningFor": since(s.created_at),
        "Size": "",
        "State": s.state.status.value,
        "Status": s.status,
    }


def _filtered(rows: list[ContainerSummary], filters: tuple[str, ...]) -> list[ContainerSummary]:
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq:
            raise UsageError(f"bad filter {f!r}: want KEY=VALUE")
        if key == "id":
            rows = [r for r in rows if r.id.startswith(value)]
        elif key == "name":
            rows = [r for r in rows if value.removeprefix("/") in r.name]
        elif key == "status":
            rows = [r for r in rows if r.state.status.value == value]
        elif key == "exited":
            rows = [
                r
                for r in rows
                if r.state.status.value == "exited" and str(r.state.exit_code) == value
            ]
        elif key == "ancestor":
            rows = [r for r in rows if r.image == value or r.image.split(":")[0] == value]
        else:
            raise UsageError(f"invalid filter {key!r} (id, name, status, exited, ancestor)")
    return rows


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers, not only running.")
@click.option("-q", "--quiet", is_flag=True, help="Only show container IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter: id, name, status, ...")
@click.option("--format", "fmt", help="json, or a Go template.")
@pass_ctx
def ps(
    ctx: Context, all_: bool, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None
) -> None:
    """List containers."""
    if any(f.startswith(("status=", "exited=")) for f in filters):
        all_ = True
    rows = _filtered(ctx.engine.containers.list(all_=all_), filters)
    if quiet:
        for r in rows:
            click.echo(r.id if no_trunc else r.id[:12])
        return
    records = [_ps_record(r, no_trunc=no_trunc) for r in rows]
    print_rows(
        fmt,
        records,
        default_columns=["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"],
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


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=10, show_default=True)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def stop(ctx: Context, timeout: int, containers: tuple[str, ...]) -> None:
    """Stop running containers (the stop signal, then SIGKILL after --time seconds)."""
    for ref in containers:
        ctx.engine.containers.stop(ref, timeout=timeout)
        click.echo(ref)


@click.command("kill")
@click.option("-s", "--signal", "sig", default="SIGKILL", show_default=True)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def kill(ctx: Context, sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal to running containers."""
    for ref in containers:
        ctx.engine.containers.kill(ref, signal=sig)
        click.echo(ref)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Also remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def rm(ctx: Context, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove containers (and their layers and mounts)."""
    failed = False
    for ref in containers:
        try:
            ctx.engine.containers.remove(ref, force=force, volumes=volumes)
        except LaminaError as exc:
            if len(containers) == 1:
                raise
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        click.echo(ref)
    if failed:
        set_exit_status(1)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output until the container exits.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
@pass_ctx
def logs(ctx: Context, follow: bool, timestamps: bool, container: str) -> None:
    """Show a container's output (stdout to stdout, stderr to stderr)."""
    for entry in ctx.engine.containers.logs(container, follow=follow):
        text = f"{entry.time} {entry.line}" if timestamps else entry.line
        stream = sys.stderr if entry.stream == "stderr" else sys.stdout
        stream.write(text)
        stream.flush()


@click.command("exec", context_settings=_RUN_SETTINGS)
@click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="Username or UID (format: name|uid[:group|gid]).")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ctx
def exec_(
    ctx: Context,
    /,
    env: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    interactive: bool,
    tty: bool,
    container: str,
    command: tuple[str, ...],
) -> None:
    """Run a command in a running container; exit with its status."""
    with _run_status():
        code = ctx.engine.containers.exec(
            container,
            command,
            env=env,
            workdir=workdir,
            user=user,
            tty=tty,
            interactive=interactive,
        )
    set_exit_status(code)


@click.group("container")
def container() -> None:
    """Manage containers."""


@container.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt (lamina never prompts).")
@pass_ctx
def container_prune(ctx: Context, force: bool) -> None:
    """Remove all stopped containers."""
    removed = ctx.engine.containers.prune()
    if removed:
        click.echo("Deleted Containers:")
        for cid in removed:
            click.echo(cid)


@container.command("inspect")
@click.option("-f", "--format", "fmt", help="json, or a Go template.")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def container_inspect(ctx: Context, fmt: str | None, containers: tuple[str, ...]) -> None:
    """Show containers as JSON (Docker API 1.41's shape)."""
    results = [ctx.engine.containers.inspect(c) for c in containers]
    inspect_out(fmt, results)


@click.command("mount")
@click.argument("container")
@pass_ctx
def mount(ctx: Context, container: str) -> None:
    """Mount a container's rootfs read-write and print the merged dir."""
    click.echo(str(ctx.engine.containers.mount(container)))


@click.command("umount")
@click.argument("container")
@pass_ctx
def umount(ctx: Context, container: str) -> None:
    """Drop one mount of a container's rootfs."""
    ctx.engine.containers.unmount(container)


@click.command("diff")
@click.argument("container")
@pass_ctx
def diff(ctx: Context, container: str) -> None:
    """Files changed in a container's filesystem (A added, C changed, D deleted)."""
    for change in ctx.engine.containers.diff(container):
        click.echo(f"{change.kind.value} {change.path}")


@click.command("commit")
@click.option("-m", "--message", help="Commit message.")
@click.option("-a", "--author", help="Author.")
@click.option("-c", "--change", "changes", multiple=True, help="Dockerfile instruction to apply.")
@click.argument("container")
@click.argument("reference", required=False)
@pass_ctx
def commit(
    ctx: Context,
    message: str | None,
    author: str | None,
    changes: tuple[str, ...],
    container: str,
    reference: str | None,
) -> None:
    """Create a new image from a container's changes."""
    rec = ctx.engine.containers.commit(
        container, reference=reference, message=message, author=author, changes=changes
    )
    click.echo(str(rec.id))


@click.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@click.argument("container")
@pass_ctx
def export(ctx: Context, output: str | None, container: str) -> None:
    """Export a container's flattened filesystem as a tar (stdout unless -o)."""
    from lamina.cli.render import write_tar

    write_tar(output, lambda f: ctx.engine.containers.export(container, f))


@click.command("cp")
@click.argument("source")
@click.argument("destination")
@pass_ctx
def cp(ctx: Context, source: str, destination: str) -> None:
    """Copy files between a container and the host: CONTAINER:SRC DEST or SRC CONTAINER:DEST.
    DEST "-" writes a tar of SRC to stdout."""
    if destination == "-":
        from lamina.cli.render import write_tar

        write_tar(None, lambda f: ctx.engine.containers.copy_archive(source, f))
        return
    ctx.engine.containers.copy(source, destination)


_CONTAINER_VERBS = (
    create, run, start, ps, stop, kill, rm, logs, exec_, mount, umount, diff, commit, export, cp
)  # fmt: skip
for _cmd in _CONTAINER_VERBS:
    container.add_command(_cmd, name={"ps": "ls"}.get(_cmd.name or "", _cmd.name))

COMMANDS = [*_CONTAINER_VERBS, container]
