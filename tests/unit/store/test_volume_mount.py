"""The local driver's ``-o`` options as docker 20.10 checks and mounts them (the expected texts
are what ``docker volume create -o ...`` printed after ``Error response from daemon:``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.errors import UsageError
from lamina.store import volume_mount
from lamina.store.volume_mount import MS_BIND, MS_RDONLY, MS_REC, check_options, parse_options


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"foo": "1"}, 'invalid option: "foo"'),
        ({"": "x"}, 'invalid option: ""'),
        ({"type": "tmpfs"}, 'missing required option: "device"'),
        ({"device": "x"}, 'missing required option: "type"'),
        ({"o": "x", "type": "t"}, 'missing required option: "device"'),
        ({"size": "1m"}, "quota size requested but no quota support"),
    ],
)
def test_check_options_refuses_as_docker(options: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError) as err:
        check_options("v1", options)
    assert str(err.value) == f"create v1: {words}"


def test_check_options_accepts() -> None:
    check_options("v1", {})
    check_options("v1", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=5"})
    check_options("v1", {"type": "none", "device": "/srv", "o": "bind"})


def test_parse_options_splits_flags_from_data() -> None:
    # moby/sys/mount parseOptions: flags set and cleared in order, the rest is the data.
    assert parse_options("size=1m,uid=5") == (0, "size=1m,uid=5")
    assert parse_options("bind") == (MS_BIND, "")
    assert parse_options("rbind,ro") == (MS_BIND | MS_REC | MS_RDONLY, "")
    assert parse_options("ro,rw,defaults,mode=700") == (0, "mode=700")


def test_a_relative_bind_device_is_read_from_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # dockerd's cwd is "/", so `-o o=bind -o device=rel` always binds /rel under Docker;
    # lamina's cwd is the shell's, so the device is made absolute before mount(2) sees it.
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        volume_mount, "_mount", lambda source, target, *_: calls.append((source, target))
    )
    volume_mount.mount({"type": "none", "o": "bind", "device": "srv/data"}, Path("/v/_data"))
    assert calls[0] == ("/srv/data", "/v/_data")
    calls.clear()
    volume_mount.mount({"type": "tmpfs", "device": "tmpfs"}, Path("/v/_data"))
    assert calls[0] == ("tmpfs", "/v/_data")  # a device name, not a path: as given
