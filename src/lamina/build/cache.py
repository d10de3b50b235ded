"""Build-cache keys: what must be equal for a step's stored result to be reused.

A key hashes the parent *image id* (the config digest: ENV/USER/WORKDIR/CMD change the config
without changing any layer, so ``ENV A=1`` -> ``ENV A=2`` before ``RUN echo $A > f`` misses),
the step as history records it (with the ``|N K=V`` build-arg prefix for RUN), the build args
in scope, the sources' hash for COPY/ADD (content and landing metadata, not mtimes) and step
options that change the result without showing in history (RUN mounts and network, the
reproducibility epoch). Which stored images may answer a key is the store's business: only
locally built ones (:mod:`lamina.store.buildcache`, CVE-2024-24557).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from lamina.digest import Digest

__all__ = ["KEY_VERSION", "step_key"]

# Bump when the meaning of a key changes, so old rows can never answer new questions.
KEY_VERSION: Final = "lamina-build-cache-v1"


def step_key(
    *,
    parent: Digest | None,
    step: str,
    args: Mapping[str, str],
    sources: str | None = None,
    options: Sequence[str] = (),
) -> str:
    """The hex key of one step (see the module docstring for what goes in)."""
    doc = [
        KEY_VERSION,
        str(parent) if parent else "scratch",
        step,
        sorted(args.items()),
        sources,
        list(options),
    ]
    return Digest.of(json.dumps(doc, ensure_ascii=False).encode()).hex
