"""What the console script (:mod:`lamina.cli.entry`) does to start faster, as functions
that change nothing until called: see that module's docstring for why each exists.

- :func:`settle_gc` re-enables the collector the console script turned off;
- :func:`stand_ins` and :func:`deferred` import a module with some of its imports stood in
  for or bound lazily (cli.main uses them for msgspec, in-process too);
- :func:`import_argparse` and :func:`import_pathlib` import those two with their stand-ins.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec


def settle_gc() -> None:
    """Start collecting again, ignoring everything allocated so far (the imported modules)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def stand_ins(modules: dict[str, types.ModuleType | None]) -> Iterator[None]:
    """Put ``modules`` in ``sys.modules`` (None: importing that name fails) for the imports
    in the ``with`` block, then restore what was there: modules imported meanwhile keep the
    stand-ins they bound, and a later import of those names gets the real modules."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)  # type: ignore[arg-type]  # None blocks an import
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


class _Deferring:
    """A meta-path finder that gives the modules it is told of ``importlib.util.LazyLoader``:
    such a module is bound at once and runs its body at the first attribute read."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in self.names:
            return None
        import importlib.util
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextlib.contextmanager
def deferred(names: Iterable[str]) -> Iterator[None]:
    """Within the ``with`` block, importing one of ``names`` binds a lazy module: its body
    runs only when one of its attributes is first read, whenever that is."""
    finder = _Deferring(frozenset(names))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_argparse() -> None:
    """Import argparse with an identity ``gettext`` (see the module docstring)."""
    if "argparse" in sys.modules or "gettext" in sys.modules:
        return
    gettext = types.ModuleType("gettext")
    gettext.gettext = lambda message: message  # type: ignore[attr-defined]
    gettext.ngettext = lambda one, many, n: one if n == 1 else many  # type: ignore[attr-defined]
    with stand_ins({"gettext": gettext}):
        import argparse  # noqa: F401  # its first import binds gettext's functions


def _quote_from_bytes(bs: bytes, safe: str = "/") -> str:
    from urllib.parse import quote_from_bytes

    return quote_from_bytes(bs, safe)


def import_pathlib() -> None:
    """Import pathlib with ``urllib.parse`` deferred to ``as_uri`` (see the module docstring)."""
    if "pathlib" in sys.modules or "urllib.parse" in sys.modules:
        return
    parse = types.ModuleType("urllib.parse")
    parse.quote_from_bytes = _quote_from_bytes  # type: ignore[attr-defined]
    with stand_ins({"urllib.parse": parse}):
        import pathlib  # noqa: F401  # binds quote_from_bytes at its first import
