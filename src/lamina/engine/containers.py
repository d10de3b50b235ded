"""Container service: create, start/run through the OCI runtime, observe, stop, remove, and the
storage verbs (mount, diff, commit, export, cp).

The runtime (``lamina.runtime``) owns the process: a per-container shim records the exit
status and the json-file log, so the truth about a container survives a ``kill -9`` of this
process and is asked for on every look (``ps``, ``inspect``). The rootfs is mounted for a run
and marked with :data:`RUN_MOUNT_MARK` in the container dir; whoever first sees the run over
(the attached launcher, ``stop``, ``rm``, or any later look) drops that one mount — the
marker's unlink decides who, so it happens once.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import functools
import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lamina.engine import container_config as cc
from lamina.errors import (
    ConflictError,
    ContainerNotFoundError,
    LaminaError,
    MountError,
    NotATerminalError,
    UsageError,
)
from lamina.store.containers import ContainerRecord
from lamina.store.store import Store
from lamina.store.volumes import VolumeRecord

# The services' helpers are imported by the verbs that use them (each CLI call is a new
# process running one verb): create and start the volumes and run-time files, ps and inspect
# the presentation.

if TYPE_CHECKING:
    from lamina.archive.changes import Change
    from lamina.engine import container_fs, container_namespaces
    from lamina.engine.container_list import ContainerSummary
    from lamina.engine.container_stats import ContainerStats
    from lamina.engine.container_update import Limits
    from lamina.engine.images import ImageService

    # lamina.runtime is imported where a process is involved, so create, mount, diff, cp and
    # commit start faster (a CLI process per command: every import counts).
    from lamina.runtime import ContainerState, LogEntry, Runtime
    from lamina.runtime.logs import LogOptions
    from lamina.runtime.state import Record

RUN_MOUNT_MARK = "rootfs.mounted"


class ContainerService:
    def __init__(self, store: Store, *, images: Callable[[], ImageService]) -> None:
        """``images`` gives the engine's image service, made when first asked for: only
        ``create`` needs it, and ``mount``, ``rm`` or ``stop`` skip its imports."""
        self._store = store
        self._image_service = images

    @property
    def _images(self) -> ImageService:
        return self._image_service()

    @functools.cached_property
    def runtime(self) -> Runtime:
        from lamina.runtime import Runtime

        return Runtime(state_dir=self._store.containers.runtime_dir)

    # -- lookups --------------------------------------------------------------------------

    def resolve(self, ref: str) -> ContainerRecord:
        return self._store.containers.resolve(ref)

    def _bundle(self, rec: ContainerRecord) -> Path:
        return self._store.containers.bundle(rec)

    def state(self, rec: ContainerRecord) -> ContainerState:
        """What the runtime's record says (never started: created), dropping the run's mount
        once the run is seen to be over."""
        from lamina.runtime.state import ContainerState, ContainerStatus, observed_state

        record = self._runtime_record(rec)
        if record is None:
            return ContainerState(status=ContainerStatus.CREATED)
        st = observed_state(
            record,
            directory=self._runtime_dir(rec),
            runc_state=lambda: self.runtime.runc_state(rec.id),
        )
        if st.status is ContainerStatus.EXITED or st.error:
            self._release_run_mount(rec)
        return st

    def is_running(self, container_id: str) -> bool:
        """Whether the container's process runs (a row still being created does not)."""
        from lamina.runtime import ContainerStatus

        rec = self._store.containers.find(container_id)
        return rec is not None and self.state(rec).status is ContainerStatus.RUNNING

    def _runtime_record(self, rec: ContainerRecord) -> Record | None:
        """The runtime's record of ``rec``'s process (None: it never started), read from its
        file: ps, inspect and logs load none of the process machinery the Runtime brings."""
        from lamina.runtime.state import read_record

        return read_record(self._runtime_dir(rec))

    def _runtime_dir(self, rec: ContainerRecord) -> Path:
        from lamina.runtime.state import SHIM_DIR

        return self._store.containers.runtime_dir / SHIM_DIR / rec.id

    # -- create ---------------------------------------------------------------------------

    def create(self, opts: cc.CreateOptions) -> ContainerRecord:
        """``docker create``: the record, its layers, its volumes (made and pre-filled), and
        its (empty) log. The files bind-mounted at run time are written by each start. With
        ``cidfile``, the id is written there (:mod:`lamina.engine.cidfile`)."""
        if not opts.cidfile:
            return self._create(opts)
        from lamina.engine.cidfile import CidFile

        cid_file = CidFile(opts.cidfile)  # before anything else, as Docker's CLI makes it
        try:
            rec = self._create(opts)
        except BaseException:
            cid_file.discard()
            raise
        try:
            cid_file.write(rec.id)
        except BaseException:
            with contextlib.suppress(LaminaError):
                self.remove(rec.id, force=True, volumes=True)
            raise
        return rec

    def _create(self, opts: cc.CreateOptions) -> ContainerRecord:
        from lamina.engine import container_create
        from lamina.engine.images import now_rfc3339
        from lamina.engine.names import random_name

        image = self._images.resolve(opts.image)
        image_cfg = dict(self._images.config(image).get("config") or {})
        path, args = cc.command_of(opts, image_cfg)
        containers = self._store.containers
        name = opts.name or random_name(taken=self._name_taken)
        vol_args = [cc.parse_volume(v) for v in opts.volumes]
        tmpfs: dict[str, str] = {}
        long_mounts: builtins.list[dict[str, Any]] = []
        tmpfs_at: builtins.list[str] = []  # --tmpfs destinations
        tmpfs_mounts_at: builtins.list[str] = []  # --mount type=tmpfs ones
        if opts.tmpfs or opts.mounts:  # mount_args loads only for these flags
            from lamina.engine import mount_args

            tmpfs = dict(mount_args.parse_tmpfs(t) for t in opts.tmpfs)
            long_mounts = [mount_args.parse_mount(m) for m in opts.mounts]
            for m in long_mounts:
                mount_args.check_mount(m)
            vol_args += [mount_args.volume_arg(m) for m in long_mounts if m["Type"] != "tmpfs"]
            tmpfs_at = [mount_args.destination({"Target": d}) for d in tmpfs]
            tmpfs_mounts_at = [
                mount_args.destination(m) for m in long_mounts if m["Type"] == "tmpfs"
            ]
        vol_args = cc.merged_volumes(vol_args, tmpfs=tmpfs_at, tmpfs_mounts=tmpfs_mounts_at)
        for v in vol_args:
            if v.is_bind and not os.path.exists(v.source or ""):
                raise UsageError(
                    f'invalid mount config for type "bind": bind source path does not '
                    f"exist: {v.source}"
                )
        anonymous = [v.destination for v in vol_args if v.source is None]
        inherited = None
        if opts.volumes_from:  # only for the flag
            from lamina.engine import volumes_from

            inherited = volumes_from.inherit(
                opts.volumes_from,
                config_of=lambda ref: self.resolve(ref).config,
                non_recursive_of=cc.non_recursive_binds,
            )
            # The container's own binds and volumes win; its anonymous -v there is dropped.
            own = [v.destination for v in vol_args if v.source is not None or v.long_syntax]
            inherited = volumes_from.without(inherited, own)
            inherited_at = {m["Destination"] for m in inherited.mounts}
            vol_args = [v for v in vol_args if v.destination not in inherited_at]
        taken = {v.destination for v in vol_args}
        if inherited is not None:
            taken |= {m["Destination"] for m in inherited.mounts}
        for dest in sorted(image_cfg.get("Volumes") or {}):  # the image's VOLUME entries
            norm = "/" + "/".join(p for p in dest.split("/") if p)
            if norm not in taken:
                vol_args.append(cc.VolumeArg(source=None, destination=norm, mode=""))
                taken.add(norm)
        if anonymous:
            # As Docker's: `-v /path` is a VOLUME of the container's config too, so `commit`
            # keeps it for the containers of the new image.
            image_cfg["Volumes"] = {
                **(image_cfg.get("Volumes") or {}),
                **{d: {} for d in anonymous},
            }
        # Everything that can refuse the flags runs before a volume is made.
        # As Docker's create: on the host's network the container is the host, by name too.
        host_name = os.uname().nodename if opts.network == "host" else ""
        config = cc.container_config(opts, image_cfg, hostname=host_name)
        modes = None
        if opts.pid or opts.ipc or opts.uts:  # only for these flags
            from lamina.engine import namespace_args as ns

            def resolve(ref: str) -> str:
                return self.resolve(ref).id

            modes = {
                "IpcMode": ns.ipc_mode(opts.ipc, resolve=resolve),
                "PidMode": ns.pid_mode(opts.pid, resolve=resolve),
                "UTSMode": ns.uts_mode(opts.uts, hostname=opts.hostname),
            }
        host = cc.host_config(
            opts,
            binds=[v for v in opts.volumes if ":" in v],
            mounts=long_mounts,
            tmpfs=tmpfs,
            modes=modes,
        )
        mounts, links, new_volumes = container_create.volume_mounts(self._store, vol_args)
        if long_mounts:
            from lamina.engine.mount_args import tmpfs_mount_point

            mounts += [tmpfs_mount_point(m) for m in long_mounts if m["Type"] == "tmpfs"]
        stored: dict[str, Any] = {"Path": path, "Args": args, "Config": config}
        no_fill: set[str] = set()
        if inherited is not None:
            mounts = inherited.mounts + mounts
            links += [(m["Name"], m["Destination"]) for m in inherited.mounts if m.get("Name")]
            no_fill = {m["Destination"] for m in inherited.mounts}
            if inherited.non_recursive:
                stored[cc.NON_RECURSIVE_KEY] = inherited.non_recursive
        stored.update(HostConfig=host, Mounts=mounts)
        try:
            rec = containers.create(
                name=name,
                image=image.id,
                top_layer=image.top_layer,
                created=now_rfc3339(),
                config=stored,
                volumes=links,
            )
        except BaseException:
            for vname in new_volumes:
                with contextlib.suppress(LaminaError):
                    self._store.volumes.remove(vname)
            raise
        try:
            container_create.make_log(self._store, rec)
            container_create.prepare_rootfs(
                self._store,
                rec,
                in_use=lambda name: self._volume_in_use(name, besides=rec.id),
                no_fill=no_fill,
            )
        except BaseException:
            with contextlib.suppress(LaminaError):
                self.remove(rec.id, force=True, volumes=True)
            for vname in new_volumes:  # named ones too: this create made them
                with contextlib.suppress(LaminaError):
                    self._store.volumes.remove(vname)
            raise
        return rec

    def _name_taken(self, name: str) -> bool:
        try:
            self._store.containers.resolve(name)
        except ContainerNotFoundError:
            return False
        return True

    # -- running --------------------------------------------------------------------------

    def start(
        self, ref: str, *, attach: bool, interactive: bool = False, detach_keys: str | None = None
    ) -> tuple[str, int | None]:
        """Start the container. Attached: wait and return its exit status (None: detached
        with ``detach_keys``, it runs on); detached: return once it runs (status 0). A
        ``Tty`` container gets a terminal either way (its output goes to this process's
        stdout when attached, to the log always). A running container is left as it is;
        attached, it is attached to as ``attach`` does (:mod:`container_attach`). Raises
        CommandNotFoundError (127) etc. as the runtime does, UsageError for ``interactive``
        into a terminal from a stdin that is not one (as Docker)."""
        from lamina.engine import container_attach, container_create
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        tty = bool(rec.config["Config"].get("Tty"))
        if attach and interactive:
            _check_tty_input(tty)
        if attach:
            container_attach.check_detach_keys(detach_keys)
        st = self.state(rec)
        if st.paused:
            raise ConflictError("cannot start a paused container, try unpause instead")
        if st.status is ContainerStatus.RUNNING:
            if not attach:
                return rec.id, 0
            return rec.id, container_attach.attach_running(
                self, rec, stdin=interactive, sig_proxy=True, detach_keys=detach_keys
            )
        log = None  # json-file, not rotated: the shim's default
        log_config = rec.config["HostConfig"].get("LogConfig") or {}
        if log_config.get("Type", "json-file") != "json-file" or log_config.get("Config"):
            from lamina.engine.log_args import log_options

            log = log_options(log_config)  # refused here, as Docker's start refuses it
        console_size = None
        if tty and attach:
            from lamina.runtime.console import terminal_size

            console_size = terminal_size()
        if rec.config["HostConfig"].get("Ulimits"):
            from lamina.engine.limit_args import check_ulimits

            check_ulimits(rec.config["HostConfig"]["Ulimits"])
        merged = self._mount_for_run(rec)
        bundle = self._bundle(rec)
        try:
            for volume in self._option_volumes(rec):  # -o volumes: mounted while in use
                try:
                    self._store.volumes.activate(volume)
                except MountError as exc:
                    raise MountError(
                        f"error while mounting volume '{volume.mountpoint}': {exc}"
                    ) from exc
            namespaces: dict[str, Any] = {}
            if not _default_namespaces(rec.config["HostConfig"]):
                from lamina.engine import container_namespaces

                namespaces = container_namespaces.run_fields(
                    rec.config, bundle=bundle, lookup=self._namespace_donor
                )
            container_create.write_host_files(self._store, rec)
            spec = cc.run_spec(
                rec.config,
                hostname=container_create.hostname(rec),
                host_files={f"/etc/{n}": bundle / n for n in container_create.HOST_FILES},
                console_size=console_size,
                init=cc.find_init() if rec.config["HostConfig"].get("Init") else None,
                namespaces=namespaces,
                log=log,
            )
            from lamina.runtime import build_spec, write_bundle

            write_bundle(bundle, build_spec(spec, rootfs=merged))
            stdin_options = container_attach.stdin_options(rec)
            if attach:
                code = self.runtime.run_attached(
                    rec.id, bundle, stdin=interactive, detach_keys=detach_keys, **stdin_options
                )
                if code is not None:  # None: detached, it runs on
                    self._release_run_mount(rec)
                return rec.id, code
            self.runtime.start_detached(rec.id, bundle, **stdin_options)
        except BaseException as exc:
            self._release_run_mount(rec)
            if isinstance(exc, LaminaError) and rec.config["HostConfig"].get("OomScoreAdj"):
                from lamina.engine.oom_args import score_note

                hint = score_note(int(rec.config["HostConfig"]["OomScoreAdj"]))
                exc.hint = hint or exc.hint
            raise
        return rec.id, 0

    def attach(
        self,
        ref: str,
        *,
        stdin: bool = True,
        sig_proxy: bool = True,
        detach_keys: str | None = None,
    ) -> int | None:
        """``docker attach`` (:func:`lamina.engine.container_attach.attach`)."""
        from lamina.engine import container_attach

        return container_attach.attach(
            self, ref, stdin=stdin, sig_proxy=sig_proxy, detach_keys=detach_keys
        )

    def run(
        self, opts: cc.CreateOptions, *, detach_keys: str | None = None
    ) -> tuple[ContainerRecord, int | None]:
        """``docker run``: create, start (attached unless ``detach``), and with
        ``auto_remove`` remove the container and its anonymous volumes once it is over (a
        detach with ``detach_keys`` leaves it running: None, and ``ps`` removes it later)."""
        if opts.interactive and not opts.detach:
            _check_tty_input(opts.tty)  # before anything is made, as Docker checks it
        if not opts.detach and detach_keys:
            from lamina.engine.container_attach import check_detach_keys

            check_detach_keys(detach_keys)
        rec = self.create(opts)
        try:
            _, code = self.start(
                rec.id,
                attach=not opts.detach,
                interactive=opts.interactive,
                detach_keys=detach_keys,
            )
        except BaseException:
            if opts.auto_remove:
                with contextlib.suppress(LaminaError):
                    self.remove(rec.id, force=True, volumes=True)
            raise
        if opts.auto_remove and not opts.detach and code is not None:
            self.remove(rec.id, force=True, volumes=True)
        return rec, code

    def exec(
        self,
        ref: str,
        args: tuple[str, ...],
        *,
        env: tuple[str, ...] = (),
        workdir: str | None = None,
        user: str | None = None,
        tty: bool = False,
        interactive: bool = False,
        detach: bool = False,
        privileged: bool = False,
    ) -> int:
        """``docker exec``: run ``args`` in the running container; its exit status
        (``privileged``: with every capability lamina holds, as a ``--privileged`` run). With
        ``detach`` (``exec -d``): start it, leave it running, and return 0 at once (``tty``
        and ``interactive`` then change nothing: it has no stdio). Raises ConflictError if the
        container is not running, CommandNotFoundError (127) etc."""
        from lamina.runtime import ContainerNotRunningError, ContainerStatus

        rec = self.resolve(ref)
        st = self.state(rec)
        if st.status is not ContainerStatus.RUNNING:
            raise ConflictError(f"container {rec.id[:12]} is not running")
        if st.paused:
            raise ConflictError(
                f"container {rec.id[:12]} is paused, unpause the container before exec"
            )
        try:
            if detach:
                self.runtime.exec_detached(
                    rec.id,
                    args,
                    env=cc.parse_env(env),
                    cwd=workdir or None,
                    user=user,
                    privileged=privileged,
                )
                return 0
            return self.runtime.exec(
                rec.id,
                args,
                env=cc.parse_env(env),
                cwd=workdir or None,
                user=user,
                tty=tty,
                stdin=interactive,
                privileged=privileged,
            )
        except ContainerNotRunningError as exc:  # it ended since we looked
            raise ConflictError(f"container {rec.id[:12]} is not running") from exc

    def _namespace_donor(self, ref: str) -> container_namespaces.Donor:
        """A container whose namespaces another joins: its init's pid if it runs."""
        from lamina.engine.container_namespaces import Donor
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        st = self.state(rec)
        pid = st.pid if st.status is ContainerStatus.RUNNING and st.pid else None
        return Donor(rec.id, pid, rec.config["HostConfig"], self._bundle(rec))

    def _mount_for_run(self, rec: ContainerRecord) -> Path:
        mark = self._bundle(rec) / RUN_MOUNT_MARK
        if mark.exists():  # a run that nobody saw end (its launcher was killed)
            self._release_run_mount(rec)
        merged = self._store.containers.mount(rec)
        mark.touch(mode=0o600)
        return merged

    def _release_run_mount(self, rec: ContainerRecord) -> None:
        try:
            os.unlink(self._bundle(rec) / RUN_MOUNT_MARK)
        except FileNotFoundError:
            return  # not mounted for a run, or someone else released it
        self._store.containers.unmount(rec)
        for volume in self._option_volumes(rec):
            self._store.volumes.deactivate(
                volume, in_use=functools.partial(self._volume_in_use, volume.name, besides=rec.id)
            )
        if rec.config["HostConfig"].get("IpcMode") == "shareable":
            from lamina.engine import container_namespaces

            container_namespaces.release(self._bundle(rec))

    def _option_volumes(self, rec: ContainerRecord) -> builtins.list[VolumeRecord]:
        """The ``volume create -o`` volumes ``rec`` mounts (their devices are mounted on the
        host while a container uses them, as Docker's local driver mounts them)."""
        out = []
        for name, _ in self._store.containers.volumes(rec.id):
            volume = self._store.volumes.find(name)
            if volume is not None and volume.options:
                out.append(volume)
        return out

    def _volume_in_use(self, name: str, *, besides: str) -> bool:
        """Whether a container other than ``besides`` that mounts the volume still runs. A
        run mark alone is no proof: a detached container that exited keeps its mark until
        someone looks, so each one marked is looked at (:meth:`state` releases a run seen to
        be over, this volume's hold included)."""
        from lamina.runtime import ContainerStatus

        for cid, _ in self._store.volumes.users(name):
            other = self._store.containers.find(cid)
            if (
                cid != besides
                and other is not None
                and (self._bundle(other) / RUN_MOUNT_MARK).exists()
                and self.state(other).status is ContainerStatus.RUNNING
            ):
                return True
        return False

    def stop(
        self, ref: str, *, timeout: float | cc.StopTimeout | None = cc.StopTimeout.CONTAINER
    ) -> str:
        """``docker stop``: the stop signal, SIGKILL after ``timeout`` seconds (None: wait for
        the exit however long it takes; by default the container's ``--stop-timeout``, else
        10)."""
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        if self.state(rec).status is ContainerStatus.RUNNING:
            self.runtime.stop(rec.id, timeout=cc.stop_timeout(rec.config, timeout))
        self.state(rec)
        return rec.id

    def restart(
        self, ref: str, *, timeout: float | cc.StopTimeout | None = cc.StopTimeout.CONTAINER
    ) -> str:
        """``docker restart``: stop it (when running), then start it detached."""
        rec = self.resolve(ref)
        self.stop(rec.id, timeout=timeout)
        self.start(rec.id, attach=False)
        return rec.id

    def wait(self, ref: str, *, poll: float = 0.05) -> int:
        """``docker wait``: block while the container runs, then its exit code (a container
        that is not running answers at once, as Docker's "not-running" condition)."""
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        while (st := self.state(rec)).status is ContainerStatus.RUNNING:
            time.sleep(poll)
        return st.exit_code

    def top(self, ref: str, ps_args: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
        """``docker top`` (:meth:`lamina.runtime.Runtime.top`); a container that never started
        is not running either."""
        from lamina.runtime import ContainerNotRunningError

        rec = self.resolve(ref)
        try:
            return self.runtime.top(rec.id, ps_args)
        except ContainerNotFoundError:
            raise ContainerNotRunningError(rec.id) from None

    def rename(self, ref: str, name: str) -> None:
        """``docker rename``: raises NameInUseError, UsageError for a name Docker refuses."""
        self._store.containers.rename(self.resolve(ref), name)

    def kill(self, ref: str, *, signal: str = "SIGKILL") -> str:
        """``docker kill``. A paused container is resumed after the signal is sent when it is
        SIGKILL or the container's stop signal, or any signal if the container's config names
        no stop signal (Docker's rule: other signals wait, pending, for ``unpause``)."""
        from lamina.runtime import ContainerNotRunningError
        from lamina.runtime.signals import signal_number

        rec = self.resolve(ref)
        stop_signal = rec.config["Config"].get("StopSignal")
        number = signal_number(signal)
        thaw = (
            not stop_signal
            or number == signal_number("SIGKILL")
            or number == signal_number(stop_signal, what="stop signal")
        )
        try:
            self.runtime.kill(rec.id, signal, thaw=thaw)
        except (ContainerNotFoundError, ContainerNotRunningError) as exc:
            raise ConflictError(f"cannot kill container {ref}: it is not running") from exc
        return rec.id

    def stats(
        self, refs: Sequence[str] = (), *, all_: bool = False, interval: float = 1.0
    ) -> builtins.list[ContainerStats]:
        """``docker stats --no-stream``: the named containers (raises ContainerNotFoundError
        for a name that is none), else the running ones (every one with ``all_``), newest
        first, each sampled twice ``interval`` seconds apart
        (:mod:`lamina.engine.container_stats`)."""
        from lamina.engine.container_stats import measure

        if refs:
            records = [self.resolve(ref) for ref in refs]
        else:
            records = [self.resolve(s.id) for s in self.list(all_=all_)]
        return measure([(rec, self.state(rec)) for rec in records], interval=interval)

    def pause(self, ref: str) -> str:
        """``docker pause``: freeze every process of the running container. Raises
        ConflictError if it is not running or already paused."""
        rec = self.resolve(ref)
        self.runtime.pause(rec.id)
        return rec.id

    def unpause(self, ref: str) -> str:
        """``docker unpause``. Raises ConflictError if the container is not paused."""
        rec = self.resolve(ref)
        self.runtime.resume(rec.id)
        return rec.id

    def update(self, ref: str, limits: Limits) -> str:
        """``docker update`` (:mod:`lamina.engine.container_update`): live when it runs."""
        from lamina.engine.container_update import update
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        running = self.state(rec).status is ContainerStatus.RUNNING
        apply = functools.partial(self.runtime.update, rec.id)
        update(self._store, rec, limits, running=running, apply=apply)
        return rec.id

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> str:
        """``docker rm``: refused for a running container unless ``force`` (which kills it);
        ``volumes`` also removes its anonymous volumes. Its mounts go with it."""
        from lamina.runtime import ContainerStatus

        rec = self.resolve(ref)
        st = self.state(rec)
        if st.paused and not force:
            raise ConflictError(
                f"you cannot remove a paused container {rec.id[:12]}. Unpause and then stop "
                "the container before attempting removal or force remove"
            )
        if st.status is ContainerStatus.RUNNING and not force:
            raise ConflictError(
                f"you cannot remove a running container {rec.id[:12]}. Stop the container "
                "before attempting removal or force remove"
            )
        self.runtime.delete(rec.id, force=True)
        self._release_run_mount(rec)
        if force:
            while self._store.containers.mount_count(rec) > 0:
                self._store.containers.unmount(rec)
        anonymous = []
        if volumes:
            for vname, _ in self._store.containers.volumes(rec.id):
                vrec = self._store.volumes.find(vname)
                if vrec is not None and vrec.anonymous:
                    anonymous.append(vname)
        self._store.containers.remove(rec)
        if rec.top_layer is not None and self._store.images.find(rec.image) is None:
            # Its image was deleted under it (rmi -f): the layers only it kept go now, as
            # Docker's rm releases them.
            self._store.layers.remove_chain(rec.top_layer)
        for vname in anonymous:
            with contextlib.suppress(LaminaError):
                self._store.volumes.remove(vname)  # still used by another: kept, as Docker
        return rec.id

    def prune(self, filters: Sequence[str] = ()) -> tuple[builtins.list[str], int]:
        """``docker container prune``: remove every container that is not running (and not
        paused) and that ``filters`` (``until``, ``label``, ``label!``) do not spare; the ids
        removed and the bytes their rw layers held (Docker's "Total reclaimed space")."""
        from lamina.engine.container_filters import labels_of
        from lamina.engine.filters import CONTAINER_KEYS, PruneFilters, rfc3339_seconds
        from lamina.runtime import ContainerStatus

        spare = PruneFilters(filters, accepted=CONTAINER_KEYS)
        removed, reclaimed = [], 0
        for rec in self._store.containers.list():
            if self.state(rec).status is ContainerStatus.RUNNING:
                continue
            if spare.keeps(labels=labels_of(rec), created=rfc3339_seconds(rec.created)):
                continue
            size = 0
            with contextlib.suppress(LaminaError):  # a layer gone missing: removed all the same
                size = self._store.containers.diff_size(rec)
            with contextlib.suppress(ContainerNotFoundError):
                removed.append(self.remove(rec.id))
                reclaimed += size
        return removed, reclaimed

    def logs(
        self,
        ref: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> Iterator[LogEntry]:
        """The container's log entries (with ``follow``, until it exits): the last ``tail``
        of what is logged so far (None: all) and, following, what comes after; only those
        logged at or after ``since`` and at or before ``until`` (Unix seconds), as
        ``docker logs --tail/--since/--until``."""
        rec = self.resolve(ref)
        if self._log_options(rec).driver == "none":
            raise ConflictError("configured logging driver does not support reading")
        entries = self._log_entries(rec, follow=follow)
        if tail is not None:
            if follow:
                logged = sum(1 for _ in self._log_entries(rec, follow=False))
                entries = itertools.islice(entries, max(0, logged - tail), None)
            else:
                entries = iter(collections.deque(entries, maxlen=max(0, tail)))
        if since is not None or until is not None:
            entries = _between(entries, since, until)
        return entries

    def _log_entries(self, rec: ContainerRecord, *, follow: bool) -> Iterator[LogEntry]:
        from lamina.runtime.logs import read_log

        options = self._log_options(rec)
        if follow:
            try:
                return self.runtime.logs(rec.id, follow=True, options=options)
            except ContainerNotFoundError:
                return iter(())  # never started: no output yet
        record = self._runtime_record(rec)  # it says where the log is
        if record is None:
            return iter(())
        path = Path(record.log_path)
        return read_log(path, follow=False, finished=lambda: True, options=options)

    def _log_options(self, rec: ContainerRecord) -> LogOptions:
        """How ``rec`` logs (its logging driver, how its log is rotated), as its start reads
        its LogConfig; Docker's default for one no start would take."""
        from lamina.runtime.logs import DEFAULT_OPTIONS

        log_config = rec.config["HostConfig"].get("LogConfig") or {}
        if log_config.get("Type", "json-file") == "json-file" and not log_config.get("Config"):
            return DEFAULT_OPTIONS
        from lamina.engine.log_args import log_options

        try:
            return log_options(log_config)
        except UsageError:
            return DEFAULT_OPTIONS  # it never started: there is no log to read

    # -- observing ------------------------------------------------------------------------

    def list(
        self,
        *,
        all_: bool = False,
        filters: Sequence[tuple[str, str]] = (),
        last: int = -1,
        size: bool = False,
    ) -> builtins.list[ContainerSummary]:
        """``docker ps``: :func:`lamina.engine.container_list.list_containers`."""
        from lamina.engine.container_list import list_containers

        return list_containers(
            self._store,
            state=self.state,
            auto_remove=lambda rec: self.remove(rec.id, force=True, volumes=True),
            all_=all_,
            filters=filters,
            last=last,
            size=size,
        )

    def inspect(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        """``docker container inspect``; with ``size`` (``-s``) its ``SizeRw`` and
        ``SizeRootFs`` too."""
        from lamina.engine.container_inspect import inspect_container
        from lamina.engine.container_list import container_size

        rec = self.resolve(ref)
        sizes = container_size(self._store, rec, {}) if size else None
        return inspect_container(
            rec,
            state=self.state(rec),
            bundle=self._bundle(rec),
            graph_data=self._store.containers.metadata(rec),
            driver_name=self._store.driver.name,
            sizes=None if sizes is None else (sizes.rw, sizes.root_fs),
        )

    # -- storage verbs --------------------------------------------------------------------

    def mount(self, ref: str) -> Path:
        return self._store.containers.mount(self.resolve(ref))

    def unmount(self, ref: str) -> None:
        self._store.containers.unmount(self.resolve(ref))

    def diff(self, ref: str) -> builtins.list[Change]:
        return self._store.containers.changes(self.resolve(ref))

    @contextlib.contextmanager
    def _rootfs(self, rec: ContainerRecord) -> Iterator[Path]:
        merged = self._store.containers.mount(rec)
        try:
            yield merged
        finally:
            self._store.containers.unmount(rec)

    def export(self, ref: str, out: IO[bytes]) -> None:
        """``docker export``: the container's flattened rootfs as a tar."""
        from lamina.archive.changes import write_tree_diff

        with self._rootfs(self.resolve(ref)) as merged:
            write_tree_diff(None, merged, out)

    def copy(
        self, source: str, destination: str, *, archive: bool = False, follow_link: bool = False
    ) -> None:
        """``docker cp``: :func:`lamina.engine.container_copy.copy`."""
        from lamina.engine import container_copy

        container_copy.copy(self, source, destination, archive=archive, follow_link=follow_link)

    def extract_archive(
        self, destination: str, source: IO[bytes], *, archive: bool = False
    ) -> None:
        """``docker cp [-a] - CONTAINER:DEST``: :func:`lamina.engine.container_copy.extract`."""
        from lamina.engine import container_copy

        container_copy.extract(self, destination, source, archive=archive)

    def copy_archive(self, source: str, out: IO[bytes], *, follow_link: bool = False) -> None:
        """``docker cp [-L] CONTAINER:PATH -``: :func:`lamina.engine.container_copy.archive`."""
        from lamina.engine import container_copy

        container_copy.archive(self, source, out, follow_link=follow_link)

    def in_view(
        self, rec: ContainerRecord, fn: Callable[[Path, container_fs.MountPoints], None]
    ) -> None:
        """``fn(rootfs, mount_points)`` with the rootfs mounted and, on it, what a start binds
        there -- the same list, from :func:`container_config.run_spec` -- in a private mount
        namespace (Docker's ``cp`` mounts them likewise). The run's files are among them only
        once a start has written them."""
        from lamina.engine import container_create

        host_files = container_create.run_files(self._store, rec)
        spec = cc.run_spec(
            rec.config, hostname=container_create.hostname(rec), host_files=host_files
        )
        from lamina.engine import container_fs

        volumes = self._option_volumes(rec)
        try:
            for volume in volumes:  # as Docker's cp, which mounts the container's volumes
                self._store.volumes.activate(volume)
            with self._rootfs(rec) as merged:
                container_fs.in_view(
                    merged,
                    spec.mounts,
                    lambda points: fn(merged, points),
                    rewritten=set(host_files.values()),
                )
        finally:
            # A running rec keeps its own; another's use keeps it too.
            besides = "" if (self._bundle(rec) / RUN_MOUNT_MARK).exists() else rec.id
            for volume in volumes:
                self._store.volumes.deactivate(
                    volume,
                    in_use=functools.partial(self._volume_in_use, volume.name, besides=besides),
                )

    def commit(
        self,
        ref: str,
        *,
        reference: str | None = None,
        message: str | None = None,
        author: str | None = None,
        changes: tuple[str, ...] = (),
        pause: bool = True,
    ) -> Any:
        """``docker commit``: the rw layer's changes become a new top layer of the image.
        With ``pause`` (Docker's default), a running container is paused while its layer is
        read, so the image holds one moment of it, not files caught half-written."""
        from lamina.engine.container_commit import commit
        from lamina.runtime import ContainerStatus, RuncError

        rec = self.resolve(ref)
        st = self.state(rec)
        paused_here = pause and st.status is ContainerStatus.RUNNING and not st.paused
        if paused_here:
            self.runtime.pause(rec.id)
        try:
            return commit(
                self._store,
                rec,
                image=self._store.images.get(rec.image),
                reference=reference,
                message=message,
                author=author,
                changes=changes,
            )
        finally:
            if paused_here:
                with contextlib.suppress(RuncError, ConflictError):  # it may have ended
                    self.runtime.resume(rec.id)


def _default_namespaces(host_config: dict[str, Any]) -> bool:
    """Whether the container has every namespace of its own, as most do (then the module
    that sets up the others is not loaded)."""
    return (
        not host_config.get("PidMode")
        and host_config.get("IpcMode", "private") == "private"
        and not host_config.get("UTSMode")
    )


def _check_tty_input(tty: bool) -> None:
    """Docker's refusal of ``-i -t`` when stdin is not a terminal (``CheckTty``)."""
    if tty and not os.isatty(0):
        raise NotATerminalError()


def _between(
    entries: Iterator[LogEntry], since: float | None, until: float | None
) -> Iterator[LogEntry]:
    from lamina.engine.times import log_time

    for entry in entries:
        when = log_time(entry.time)
        if since is not None and when < since:
            continue
        if until is not None and when > until:
            return  # the log is in time order: nothing later is wanted
        yield entry
