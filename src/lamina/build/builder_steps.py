"""One build's walk through its stages: FROM, ARG, RUN, COPY/ADD, WORKDIR and the config-only
instructions, each printed as ``Step N/M : ...`` and committed through the :class:`Builder`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct

from lamina.build.cache import step_key
from lamina.build.dockerignore import load_ignore
from lamina.build.expand import expand_word
from lamina.build.instructions import (
    Add,
    Arg,
    Copy,
    Dockerfile,
    Form,
    From,
    Healthcheck,
    Instruction,
    Label,
    NetworkMode,
    Run,
    Stage,
    Workdir,
)
from lamina.build.parser import parse
from lamina.build.request import BuildRequest, BuildResult, CachePolicy, RunOutput
from lamina.build.stage import (
    DEFAULT_PATH,
    PROXY_ARGS,
    StageState,
    apply_metadata,
    healthcheck_note,
)
from lamina.build.volumes import Discard, mount_points
from lamina.digest import Digest, chain_ids
from lamina.errors import BuildError, InstructionFailedError, UsageError
from lamina.oci.config import history_for_layers
from lamina.store.layers import LayerRecord
from lamina.store.worklayers import InitLayer

if TYPE_CHECKING:
    from lamina.build.builder import Builder
    from lamina.build.context import SourceRoot

# Steps that miss the cache load the copy, archive and runtime code on first use (inside the
# methods below), so an all-cached rebuild starts as fast as the CLI itself.


class _StepLayer(Struct):
    rootfs: Path  # the mounted work layer
    layer: LayerRecord | None = None  # its diff once ingested (None: the diff was empty)
    discard: Discard = Discard()  # what the step's diff leaves out (a RUN's VOLUME paths)


class Steps:
    def __init__(self, *, builder: Builder, req: BuildRequest, df: Dockerfile, temp: Path) -> None:
        self.b = builder
        self.req = req
        self.df = df
        self.temp = temp
        self.escape = df.escape
        self.step = 0
        self.total = 0
        self.hits = 0
        self.use_cache = req.cache is CachePolicy.USE
        self.consumed: set[str] = set()
        self.meta: dict[str, str] = {}
        self.stages: list[StageState] = []
        self._context: SourceRoot | None = None
        self._quiet_ids = False  # running a base image's ONBUILD triggers

    @property
    def context(self) -> SourceRoot:
        if self._context is None:
            from lamina.build.context import SourceRoot

            req = self.req
            ignore = load_ignore(context_dir=req.context_dir, dockerfile_path=req.dockerfile_path)
            self._context = SourceRoot(path=req.context_dir, ignore=ignore)
        return self._context

    # -- the walk ------------------------------------------------------------------------

    def run(self) -> BuildResult:
        from lamina.build.builder import unused_build_args

        for warning in self.df.warnings:
            self.b.report(warning)
        stages = self._stages()
        labels = [
            Label(line=0, end_line=0, column=0, original=f"LABEL {k}={v}", pairs=((k, v),),
                  literal=True)
            for k, v in sorted(self.req.labels.items())
        ]  # fmt: skip
        # docker 20.10 counts and prints the ARGs before the first FROM as steps too ("Step
        # 1/9 : ARG B=busybox", no " ---> " line after them: they commit nothing).
        self.total = len(self.df.global_args) + sum(1 + len(s.instructions) for s in stages)
        self.total += len(labels)
        for arg in self.df.global_args:
            self._announce(arg)
            for decl in arg.args:
                self.consumed.add(decl.name)
                if decl.name in self.req.build_args:
                    self.meta[decl.name] = self.req.build_args[decl.name]
                elif decl.default is not None:
                    self.meta[decl.name] = self._word(decl.default, self.meta, arg.line)
        for stage in stages:
            state = self._from(stage)
            last = stage is stages[-1]
            for ins in (*stage.instructions, *labels) if last else stage.instructions:
                self._announce(ins)
                self.dispatch(state, ins)
            self.stages.append(state)
        final = self.stages[-1]
        if final.image_id is None:
            raise BuildError("no image was produced: the final stage is FROM scratch and empty")
        warnings = []
        given = {*self.req.build_args, *self.req.unset_build_args}
        unused = unused_build_args(dict.fromkeys(given, ""), self.consumed)
        if unused:  # docker 20.10: "[Warning] One or more build-args [A B] were not consumed"
            warnings.append(f"One or more build-args [{' '.join(unused)}] were not consumed")
        return BuildResult(
            image_id=final.image_id, steps=self.step, cache_hits=self.hits, warnings=tuple(warnings)
        )

    def _stages(self) -> tuple[Stage, ...]:
        stages = self.df.stages
        if self.req.target is None:
            return stages
        for i, s in enumerate(stages):
            if s.name == self.req.target.lower():
                return stages[: i + 1]
        raise BuildError(f"target stage {self.req.target!r} could not be found")

    def _announce(self, ins: Instruction) -> None:
        self.step += 1
        # As docker prints it: the instruction as written, continuation lines joined, blanks
        # inside kept ("LABEL a=1     b=2"), only the ends trimmed.
        self.b.report(f"Step {self.step}/{self.total} : {ins.original.strip()}")

    def _word(self, text: str, env: dict[str, str], line: int) -> str:
        return expand_word(text, env=env, escape=self.escape, line=line)

    # -- FROM ----------------------------------------------------------------------------

    def _from(self, stage: Stage) -> StageState:
        ins: From = stage.from_
        self._announce(ins)
        ref = self._word(ins.image, self.meta, ins.line)
        if not ref.strip():  # docker 20.10's words, naming the text as written
            raise BuildError(f"base name ({ins.image}) should not be blank")
        named = {s.name: s for s in self.stages if s.name}
        if ref.lower() in named:
            state = named[ref.lower()].clone(index=stage.index, name=stage.name)
        elif ref.lower() == "scratch":
            state = StageState(
                index=stage.index,
                name=stage.name,
                doc={"architecture": "amd64", "os": "linux", "config": {}},
                layers=[],
                image_id=None,
            )
        else:
            state = self._base(ref, index=stage.index, name=stage.name)
        if not any(e.startswith("PATH=") for e in state.env_list()):
            state.set_env("PATH", DEFAULT_PATH)
        triggers = [str(t) for t in state.config.get("OnBuild") or []]
        if triggers:
            state.config["OnBuild"] = None
            # docker 20.10: "# Executing 1 build trigger" / "# Executing 3 build triggers",
            # then each trigger's own lines (" ---> Using cache", a RUN's output) but not the
            # id each one commits: the only id printed is the stage's, below.
            plural = "s" if len(triggers) != 1 else ""
            self.b.report(f"# Executing {len(triggers)} build trigger{plural}")
            self._quiet_ids = True
            try:
                for text in triggers:
                    parsed = parse(f"FROM scratch\n{text}\n")
                    for trig in parsed.stages[0].instructions:
                        self.dispatch(state, trig)
            finally:
                self._quiet_ids = False
        # FROM scratch has no id yet: docker prints " ---> " with nothing after it.
        self.b.report(f" ---> {state.image_id.hex[:12] if state.image_id is not None else ''}")
        return state

    def _base(self, ref: str, *, index: int, name: str | None) -> StageState:
        try:
            image = self.b.resolve_base(ref)
        except UsageError as exc:
            # A name no image answers (an ambiguous id prefix) fails the build, exit 1 as
            # every docker build failure but a RUN's, not exit 2 as a bad command line.
            raise BuildError(f"{ref}: {exc}") from None
        config = image.config
        chains = chain_ids(list(config.diff_ids)) if config.diff_ids else []
        layers = [self.b.store.layers.get(c) for c in chains]
        doc = config.json()
        history = history_for_layers(config.history, len(chains))
        keep = {k: v for k, v in doc.items() if k in ("architecture", "os", "variant", "author")}
        keep["config"] = dict(doc.get("config") or {})
        return StageState(
            index=index,
            name=name,
            doc=keep,
            layers=layers,
            image_id=image.image_id,
            history=history,
        )

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, state: StageState, ins: Instruction) -> None:
        if isinstance(ins, Arg):
            self._arg(state, ins)
        elif isinstance(ins, Run):
            self._run(state, ins)
        elif isinstance(ins, Copy | Add):
            self._copy(state, ins)
        elif isinstance(ins, Workdir):
            self._workdir(state, ins)
        else:
            if isinstance(ins, Healthcheck) and (note := healthcheck_note(state)):
                self.b.report(note)
            created_by = apply_metadata(state, ins, escape=self.escape)
            self._finish(state, created_by, key_options=())

    def _key(self, state: StageState, created_by: str, *options: str, sources: str = "") -> str:
        epoch = self.req.source_date_epoch
        return step_key(
            parent=state.image_id,
            step=created_by,
            args=state.arg_values(),
            sources=sources or None,
            options=[*options, f"epoch={epoch}"],
        )

    def _cached(self, state: StageState, key: str) -> bool:
        if not self.use_cache:
            return False
        hit = self.b.cache.lookup(key)
        if hit is None:
            self.use_cache = False  # after the first miss every later step misses
            return False
        self.b.adopt(state, hit)
        self.hits += 1
        self.b.report(" ---> Using cache")
        self._report_id(hit)
        return True

    def _report_id(self, image_id: Digest) -> None:
        if not self._quiet_ids:
            self.b.report(f" ---> {image_id.hex[:12]}")

    def _finish(self, state: StageState, created_by: str, *, key_options: tuple[str, ...]) -> None:
        key = self._key(state, created_by, *key_options)
        if self._cached(state, key):
            return
        image_id = self.b.commit(state, req=self.req, created_by=created_by, layer=None, key=key)
        self._report_id(image_id)

    def _arg(self, state: StageState, ins: Arg) -> None:
        parts = []
        env = state.expansion_env()
        for decl in ins.args:
            self.consumed.add(decl.name)
            default = None if decl.default is None else self._word(decl.default, env, ins.line)
            if decl.name in self.req.build_args:
                value: str | None = self.req.build_args[decl.name]
            elif default is not None:
                value = default
            else:
                value = self.meta.get(decl.name)
            state.args[decl.name] = value
            parts.append(decl.name if default is None else f"{decl.name}={default}")
        self._finish(state, state.nop("ARG " + " ".join(parts)), key_options=())

    # -- layer steps ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _layer_step(self, state: StageState, init: InitLayer) -> Iterator[_StepLayer]:
        """Yield a mounted work layer; afterwards its diff becomes ``.layer`` (None: empty)."""
        with tempfile.TemporaryFile(dir=self.temp) as tar:
            with self.b.work.open(parent=state.top_layer, init=init) as wl:
                step = _StepLayer(rootfs=wl.rootfs)
                yield step
                wl.diff_tar(tar)
            diff = self.b.rewritten(
                tar, epoch=self.req.source_date_epoch, discard=step.discard, temp=self.temp
            )
            try:
                step.layer = self.b.layer_from(diff, parent=state.top_layer)
            finally:
                diff.close()

    def _commit_layer(self, state: StageState, created_by: str, key: str, step: _StepLayer) -> None:
        image_id = self.b.commit(
            state, req=self.req, created_by=created_by, layer=step.layer, key=key
        )
        self._report_id(image_id)

    def _workdir(self, state: StageState, ins: Workdir) -> None:
        path = self._word(ins.path, state.expansion_env(), ins.line)
        wd = posixpath.normpath(posixpath.join(state.config.get("WorkingDir") or "/", path))
        state.config["WorkingDir"] = wd
        created_by = state.nop_string("WORKDIR " + wd)
        key = self._key(state, created_by)
        if self._cached(state, key):
            return
        from lamina.build.destination import open_dest_dir

        with self._layer_step(state, InitLayer.WITHOUT) as step:
            os.close(open_dest_dir(step.rootfs, wd, owner=None))
        self._commit_layer(state, created_by, key, step)

    def _run(self, state: StageState, ins: Run) -> None:
        env_map = state.env_map()
        args = {k: v for k, v in state.arg_values().items() if k not in env_map}
        script = ins.inline_script()
        if ins.command.form is Form.EXEC:
            argv = list(ins.command.args)
        elif script is not None:
            argv = [*state.shell(), script.content]
        else:
            argv = [*state.shell(), ins.shell_text()]
        if not argv:
            raise BuildError(f"line {ins.line}: RUN needs a command")
        proxies = {  # predefined proxy args given with --build-arg; an ENV of the name wins
            k: v
            for k, v in self.req.build_args.items()
            if k in PROXY_ARGS and k not in args and k not in env_map
        }
        # Docker's history names the build args the step saw, counting only the ones it
        # references or that are not predefined proxy args; given any build arg at all
        # (even an unreferenced proxy), the prefix is there: `|0 /bin/sh -c ...`.
        prefix = (
            [f"|{len(args)}", *sorted(f"{k}={v}" for k, v in args.items())]
            if args or proxies
            else []
        )
        created_by = " ".join([*prefix, *argv])
        network = ins.network or NetworkMode.DEFAULT
        if network is NetworkMode.DEFAULT:
            network = self.req.network
        mounts = [repr(m) for m in ins.mounts]
        key = self._key(state, created_by, f"network={network.value}", *mounts)
        if self._cached(state, key):
            return
        from lamina.build.run import RunRequest, run_step
        from lamina.runtime import NetworkMode as RunNetwork

        env = (*state.env_list(), *(f"{k}={v}" for k, v in {**proxies, **args}.items()))
        cid = "lamina-build-" + os.urandom(6).hex()
        self.b.report(f" ---> Running in {cid[-12:]}")
        request = RunRequest(
            argv=tuple(argv),
            env=env,
            cwd=str(state.config.get("WorkingDir") or "/"),
            user=str(state.config.get("User") or ""),
            network=RunNetwork.HOST if network is NetworkMode.HOST else RunNetwork.NONE,
            mounts=ins.mounts,
            secrets=self.req.secrets,
            cache_root=self.b.cache_root,
            temp=self.temp,
            output=self.req.output,
        )
        with self._layer_step(state, InitLayer.WITH) as step:
            volumes = state.config.get("Volumes") or {}
            step.discard = mount_points(step.rootfs, sorted(volumes))
            status, output = run_step(
                request, rootfs=step.rootfs, runtime=self.b.runtime, container_id=cid
            )
            if status != 0:
                err = InstructionFailedError(
                    f"The command '{' '.join(argv)}' returned a non-zero code: {status}",
                    step=self.step,
                    status=status,
                )
                if output and self.req.output is RunOutput.QUIET:
                    for line in output.rstrip("\n").splitlines():
                        err.add_note(line)
                raise err
        self._commit_layer(state, created_by, key, step)

    def _copy(self, state: StageState, ins: Copy | Add) -> None:
        from lamina.build.copystep import plan_copy

        from_ = ins.from_ if isinstance(ins, Copy) else None
        with self._source_root(state, from_, ins.line) as root:
            plan, dest_written = plan_copy(
                ins,
                env=state.expansion_env(),
                escape=self.escape,
                workdir=str(state.config.get("WorkingDir") or "/"),
                root=root,
                inline_dir=self.temp / f"inline-{self.step}",
                from_given=from_ is not None,
            )
            created_by = state.nop_string(plan.created_by_text(dest_written))
            key = self._key(
                state, created_by, f"chmod={plan.chmod}", f"unpack={plan.unpack}",
                sources=plan.source_hash,
            )  # fmt: skip
            if self._cached(state, key):
                return
            with self._layer_step(state, InitLayer.WITHOUT) as step:
                plan.perform(step.rootfs)
        self._commit_layer(state, created_by, key, step)

    @contextlib.contextmanager
    def _source_root(self, state: StageState, from_: str | None, line: int) -> Iterator[SourceRoot]:
        from lamina.build.context import SourceRoot

        if from_ is None:
            yield self.context
            return
        ref = self._word(from_, state.expansion_env(), line)
        if not ref.strip():
            raise BuildError(f"line {line}: --from={from_} names no stage or image (it is empty)")
        source: StageState | None = None
        if ref.isascii() and ref.isdigit():
            idx = int(ref)
            if idx >= len(self.stages):
                raise BuildError(f"COPY --from={ref}: stage {idx} is not built before this one")
            source = self.stages[idx]
        else:
            source = next((s for s in self.stages if s.name == ref.lower()), None)
        if source is not None:
            top = source.top_layer
        else:
            base = self._base(ref, index=-1, name=None)
            top = base.top_layer
        if top is None:
            empty = self.temp / f"empty-{self.step}"
            empty.mkdir(mode=0o755, exist_ok=True)
            yield SourceRoot(path=empty, label=f"--from={ref}")
            return
        merged = self.b.store.layers.mount(top)
        try:
            yield SourceRoot(path=merged, label=f"--from={ref}")
        finally:
            self.b.store.layers.unmount(top)
