"""What a build is asked (:class:`BuildRequest`) and what it answers (:class:`BuildResult`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct, field

from lamina.build.instructions import NetworkMode
from lamina.digest import Digest

__all__ = ["BuildRequest", "BuildResult", "CachePolicy", "RunOutput"]


class RunOutput(enum.Enum):
    """Where a RUN's output goes while it runs: our stderr (stdout carries only the result),
    or nowhere (``-q``; shown from the log if the step fails)."""

    STDERR = "stderr"
    QUIET = "quiet"


class CachePolicy(enum.Enum):
    USE = "use"
    IGNORE = "ignore"  # --no-cache: nothing is looked up (results are still recorded)


class BuildRequest(Struct, frozen=True, kw_only=True):
    dockerfile: str  # the Dockerfile's text
    context_dir: Path
    dockerfile_path: Path | None  # for <Dockerfile>.dockerignore; None: read from stdin
    build_args: Mapping[str, str] = field(default_factory=dict)
    # `--build-arg NAME` with NAME not in the environment: no value (an ARG keeps its
    # default), but docker still names it when no ARG declares it.
    unset_build_args: frozenset[str] = frozenset()
    target: str | None = None
    # ``--label``: one LABEL step each (sorted by key, values as given) after the built
    # stage's instructions, as docker 20.10's classic builder appends them.
    labels: Mapping[str, str] = field(default_factory=dict)
    cache: CachePolicy = CachePolicy.USE
    secrets: Mapping[str, Path] = field(default_factory=dict)
    source_date_epoch: int | None = None
    output: RunOutput = RunOutput.STDERR
    # RUN steps' network unless a step says (RUN --network): DEFAULT is none, as lamina has
    # no bridge network to give; HOST is ``docker build --network host``.
    network: NetworkMode = NetworkMode.DEFAULT


class BuildResult(Struct, frozen=True, kw_only=True):
    image_id: Digest
    steps: int
    cache_hits: int
    warnings: tuple[str, ...]
