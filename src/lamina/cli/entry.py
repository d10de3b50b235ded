"""The ``lamina`` console script: :func:`lamina.cli.main.main` run as a short-lived process.

Two costs of every CLI start are not lamina's work and are skipped here, never in
:func:`~lamina.cli.main.main` itself (tests and embedders call that in-process):

- the cyclic garbage collector, which during start-up only rescans the ~200 modules' worth of
  objects being imported (~4 ms a start). It is frozen out, not turned off: once the store
  is open (:class:`~lamina.cli.context.Context`), :func:`settle_gc` moves everything alive
  into the permanent generation and re-enables collection, so a long ``load`` or ``build``
  still collects its cycles;
- interpreter teardown (~9 ms: clearing every module's globals one by one). Every file,
  lock and database handle is closed by the command's own ``with`` blocks before
  :func:`~lamina.cli.main.main` returns, so the process flushes its streams and leaves with
  ``os._exit``; the kernel releases whatever is left, exactly as after a ``kill``.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn


def settle_gc() -> None:
    """Start collecting again, ignoring everything allocated so far (the imported modules)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run() -> NoReturn:
    gc.disable()
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
