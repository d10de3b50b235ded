"""lamina: a daemonless container storage engine.

``lamina.Engine.open(root)`` is the entry point; see the README.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Engine", "LaminaError", "__version__"]

# Not typing.TYPE_CHECKING: the console script turns the garbage collector off before
# typing loads (lamina.cli.entry), so this package imports nothing at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lamina.engine.engine import Engine
    from lamina.errors import LaminaError


def __getattr__(name: str) -> Any:
    # Lazy, so `import lamina` (and `lamina --version`) stays cheap.
    if name == "Engine":
        from lamina.engine.engine import Engine

        return Engine
    if name == "LaminaError":
        from lamina.errors import LaminaError

        return LaminaError
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
