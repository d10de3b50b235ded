"""The public API is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import lamina


def test_all_is_pinned() -> None:
    assert sorted(lamina.__all__) == ["Engine", "LaminaError", "__version__"]


def test_all_names_resolve() -> None:
    for name in lamina.__all__:
        assert getattr(lamina, name) is not None


def test_py_typed_shipped() -> None:
    from pathlib import Path

    assert (Path(lamina.__file__).parent / "py.typed").is_file()
