"""The ``lamina`` console script: :func:`lamina.cli.main.main` run as a short-lived process.

Two costs of every CLI start are not lamina's work and are skipped here, never in
:func:`~lamina.cli.main.main` itself (tests and embedders call that in-process):

- the cyclic garbage collector, which during start-up only rescans the ~200 modules' worth of
  objects being imported (~4 ms a start). It is frozen out, not turned off: once the store
  is open (:class:`~lamina.cli.context.Context`), :func:`settle_gc` moves everything alive
  into the permanent generation and re-enables collection, so a long ``load`` or ``build``
  still collects its cycles;
- argparse's message lookups (~1.5 ms): it passes each of its own strings ("usage: ",
  "options", its error texts) through ``gettext``, which imports ``locale`` and searches the
  locale directories for a catalog at every call. CPython ships no catalog for argparse, so
  the lookup returns its input; :func:`_import_argparse` gives argparse that identity;
- ``urllib.parse`` (with ``ipaddress``, ~1.5 ms), which ``pathlib`` imports for
  ``Path.as_uri`` alone: :func:`_import_pathlib` hands it a function that imports the real
  one at its first call;
- interpreter teardown (~9 ms: clearing every module's globals one by one). Every file,
  lock and database handle is closed by the command's own ``with`` blocks before
  :func:`~lamina.cli.main.main` returns, so the process flushes its streams and leaves with
  ``os._exit``; the kernel releases whatever is left, exactly as after a ``kill``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn

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


def _import_argparse() -> None:
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


def _import_pathlib() -> None:
    """Import pathlib with ``urllib.parse`` deferred to ``as_uri`` (see the module docstring)."""
    if "pathlib" in sys.modules or "urllib.parse" in sys.modules:
        return
    parse = types.ModuleType("urllib.parse")
    parse.quote_from_bytes = _quote_from_bytes  # type: ignore[attr-defined]
    with stand_ins({"urllib.parse": parse}):
        import pathlib  # noqa: F401  # binds quote_from_bytes at its first import


def run() -> NoReturn:
    gc.disable()
    _import_argparse()
    _import_pathlib()
    from lamina.cli.main import main

    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            # A reader that went away (`lamina images | head`) or a stream already closed.
            pass
        except OSError:
            status = status or 1
    os._exit(status)
