"""The ``lamina`` console script: :func:`lamina.cli.main.main` run as a short-lived process.

Costs of every CLI start that are not lamina's work are skipped here, never in
:func:`~lamina.cli.main.main` itself (tests and embedders call that in-process); the helpers
live in :mod:`lamina.cli.startup`:

- the cyclic garbage collector, which during start-up only rescans the ~200 modules' worth of
  objects being imported (~4 ms a start). It is turned off as this module is imported,
  before anything else (neither ``lamina`` nor ``lamina.cli`` imports a module at run time,
  so it is off before ``typing`` and ``re`` load): only the console script and
  ``python -m lamina`` import this module. It is frozen out, not left off: once the store is
  open (:class:`~lamina.cli.context.Context`), :func:`~lamina.cli.startup.settle_gc` moves
  everything alive into the permanent generation and re-enables collection, so a long
  ``load`` or ``build`` still collects its cycles;
- argparse's message lookups (~1.5 ms): it passes each of its own strings ("usage: ",
  "options", its error texts) through ``gettext``, which imports ``locale`` and searches the
  locale directories for a catalog at every call. CPython ships no catalog for argparse, so
  the lookup returns its input; :func:`~lamina.cli.startup.import_argparse` gives argparse
  that identity;
- ``urllib.parse`` (with ``ipaddress``, ~1.5 ms), which ``pathlib`` imports for
  ``Path.as_uri`` alone: :func:`~lamina.cli.startup.import_pathlib` hands it a function
  that imports the real one at its first call;
- interpreter teardown (~9 ms: clearing every module's globals one by one). Every file,
  lock and database handle is closed by the command's own ``with`` blocks before
  :func:`~lamina.cli.main.main` returns, so the process flushes its streams and leaves with
  ``os._exit``; the kernel releases whatever is left, exactly as after a ``kill``.
"""

from __future__ import annotations

import gc

gc.disable()  # first: see the module docstring

import os  # noqa: E402
import sys  # noqa: E402
from typing import NoReturn  # noqa: E402

from lamina.cli.startup import import_argparse, import_pathlib  # noqa: E402


def run() -> NoReturn:
    import_argparse()
    import_pathlib()
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
