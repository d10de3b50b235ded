"""``--change`` instructions (``docker import --change``, ``docker commit --change``).

Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR (and
STOPSIGNAL for commit); each edits the image's ``config`` object.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lamina.errors import BuildError, DockerfileSyntaxError, UsageError

if TYPE_CHECKING:
    from lamina.build.instructions import Workdir
    from lamina.build.stage import StageState

SUPPORTED = frozenset(
    {
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "USER",
        "VOLUME",
        "WORKDIR",
        "STOPSIGNAL",
    }
)


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Return a copy of the image ``config`` object with each change applied in order.

    As Docker's ``BuildFromConfig``: the changes are read as Dockerfile lines (one change may
    hold several, as Docker joins them with newlines) and applied by the builder's own rules,
    so ``ENV PATH=$PATH:/opt/bin`` expands against the config's Env, a word's quotes and
    escapes are the builder's, and an ENTRYPOINT without a CMD among the changes clears the
    image's CMD. Raises UsageError naming the change for anything else."""
    from lamina.build.instructions import Workdir
    from lamina.build.parser import parse
    from lamina.build.stage import StageState, apply_metadata

    text = "\n".join(changes)
    if not text.strip():
        return copy.deepcopy(config)
    try:
        stages = parse("FROM scratch\n" + text).stages
    except DockerfileSyntaxError as exc:
        raise UsageError(f"invalid --change: {_without_position(str(exc))}") from None
    if len(stages) > 1:
        raise UsageError(
            f"FROM is not a valid change command (valid: {', '.join(sorted(SUPPORTED))})"
        )
    instructions = stages[0].instructions
    state = StageState(
        index=0, name=None, doc={"config": copy.deepcopy(config)}, layers=[], image_id=None
    )
    for ins in instructions:
        if ins.keyword not in SUPPORTED:
            raise UsageError(
                f"{ins.keyword} is not a valid change command "
                f"(valid: {', '.join(sorted(SUPPORTED))})"
            )
        if isinstance(ins, Workdir):
            _workdir(state, ins)
            continue
        try:
            apply_metadata(state, ins, escape="\\")
        except BuildError as exc:
            # "line 2: STOPSIGNAL: ..." -- the line is the made-up Dockerfile's
            message = str(exc).removeprefix(f"line {ins.line}: ")
            raise UsageError(f"invalid --change: {message}") from None
    return state.config


def _workdir(state: StageState, ins: Workdir) -> None:
    """WORKDIR as the builder reads it: expanded, and relative to the previous one."""
    from lamina.build.expand import expand_word

    path = expand_word(ins.path, env=state.expansion_env(), line=ins.line)
    current = str(state.config.get("WorkingDir") or "/")
    state.config["WorkingDir"] = posixpath.normpath(posixpath.join(current, path))


def _without_position(message: str) -> str:
    """A syntax error's text without the ``Dockerfile:L:C:`` of the made-up Dockerfile."""
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("Dockerfile:") else message
