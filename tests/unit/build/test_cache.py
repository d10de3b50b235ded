"""Build-cache keys: equal inputs give equal keys; each input that changes the result changes
the key (the expected behaviour is the issue's: parent image id, step, args, sources)."""

from __future__ import annotations

from lamina.build.cache import step_key
from lamina.digest import Digest

P1 = Digest("sha256:" + "1" * 64)
P2 = Digest("sha256:" + "2" * 64)


def _key(**kw: object) -> str:
    base: dict[str, object] = {
        "parent": P1,
        "step": "/bin/sh -c make",
        "args": {"V": "1"},
        "sources": None,
        "options": ("network=none",),
    }
    base.update(kw)
    return step_key(**base)  # type: ignore[arg-type]


def test_equal_inputs_equal_keys() -> None:
    assert _key() == _key()
    assert _key(args={"A": "1", "B": "2"}) == _key(args={"B": "2", "A": "1"})


def test_every_input_changes_the_key() -> None:
    keys = {
        _key(),
        _key(parent=P2),
        _key(parent=None),
        _key(step="/bin/sh -c make install"),
        _key(args={"V": "2"}),
        _key(args={}),
        _key(sources="file:" + "a" * 64),
        _key(sources="file:" + "b" * 64),
        _key(options=("network=host",)),
    }
    assert len(keys) == 9
