"""The prune verbs' ``--filter`` and output, as Docker 20.10's. Each expectation was first seen
with dockerd 20.10.24 running the same steps:

- ``container prune``, ``image prune`` and ``system prune`` take ``until`` (a time, or a
  duration back from now; one at most), ``label`` and ``label!``; ``image prune`` also
  ``dangling``; ``volume prune`` only the two label keys. Anything else is "Invalid filter
  'KEY'", exit 1, and nothing is removed;
- ``label!=K`` spares what has the label K; ``dangling=false`` is ``-a``;
- ``container prune`` prints "Deleted Containers:", the ids, a blank line, then "Total
  reclaimed space: SIZE" (the rw layers' bytes), or only that last line;
- ``system prune`` removes stopped containers first; ``--volumes`` with ``until`` is refused
  ('The "until" filter is not supported with "--volumes"', exit 1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from in_process import Cli

pytestmark = [pytest.mark.needs_root]


@pytest.fixture
def cli(shm_tmp: Path, busybox_tar: Path, capfd: pytest.CaptureFixture[str]) -> Cli:
    c = Cli(shm_tmp / "root", capfd, driver="vfs")
    c.ok("import", str(busybox_tar), "busybox")
    return c


def _names(cli: Cli) -> list[str]:
    return sorted(cli.ok("ps", "-a", "--format", "{{.Names}}").split())


def _id(cli: Cli, name: str) -> str:
    return cli.ok("inspect", "-f", "{{.Id}}", name).strip()


def _later() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_container_prune_filters(cli: Cli) -> None:
    for name, labels in (("one", ["-l", "a=1"]), ("two", ["-l", "a=2"]), ("bare", [])):
        cli.ok("create", "--name", name, *labels, "busybox", "true")
    refused = {
        ("--filter", "foo=bar"): "error: Invalid filter 'foo'",
        ("--filter", "dangling=true"): "error: Invalid filter 'dangling'",
        ("--filter", "until=bogus"): 'error: failed to parse value as time or duration: "bogus"',
        ("--filter", "until=1h", "--filter", "until=2h"): (
            "error: more than one until filter specified"
        ),
    }
    for flags, message in refused.items():
        code, _, err = cli("container", "prune", "-f", *flags)
        assert (code, err.strip()) == (1, message), flags
    assert _names(cli) == ["bare", "one", "two"]  # nothing went

    two = _id(cli, "two")
    out = cli.ok("container", "prune", "-f", "--filter", "label=a=2")
    assert out == f"Deleted Containers:\n{two}\n\nTotal reclaimed space: 0B\n"
    bare = _id(cli, "bare")
    assert cli.ok("container", "prune", "-f", "--filter", "label!=a").split()[2] == bare
    # until: only what was made before the time; an hour ago spares everything made now.
    assert cli.ok("container", "prune", "-f", "--filter", "until=1h") == (
        "Total reclaimed space: 0B\n"
    )
    assert _names(cli) == ["one"]
    cli.ok("container", "prune", "-f", "--filter", f"until={_later()}")
    assert _names(cli) == []


def test_image_and_volume_prune_filters(cli: Cli, busybox_tar: Path) -> None:
    cli.ok("import", "-c", "LABEL keep=yes", str(busybox_tar), "kept")
    cli.ok("import", "-c", "LABEL tier=old", str(busybox_tar), "old")
    # dangling=false is -a; label= narrows it to the images carrying the label.
    out = cli.ok("image", "prune", "-f", "--filter", "dangling=false", "--filter", "label=tier")
    assert "untagged: old:latest" in out
    assert sorted(cli.ok("images", "--format", "{{.Repository}}").split()) == ["busybox", "kept"]
    out = cli.ok("image", "prune", "-a", "-f", "--filter", "label!=keep")
    assert "untagged: busybox:latest" in out
    assert cli.ok("images", "--format", "{{.Repository}}").split() == ["kept"]
    code, _, err = cli("image", "prune", "-f", "--filter", "dangling=maybe")
    assert (code, err.strip()) == (1, "error: Invalid filter 'dangling=[maybe]'")

    cli.ok("volume", "create", "--label", "keep=1", "v1")
    cli.ok("volume", "create", "v2")
    code, _, err = cli("volume", "prune", "-f", "--all", "--filter", "until=1h")
    assert (code, err.strip()) == (1, "error: Invalid filter 'until'")
    out = cli.ok("volume", "prune", "-f", "--all", "--filter", "label!=keep")
    assert out.startswith("Deleted Volumes:\nv2\n\n")
    assert cli.ok("volume", "ls", "-q").split() == ["v1"]


def test_system_prune_removes_stopped_containers_and_checks_filters_first(cli: Cli) -> None:
    cli.ok("create", "--name", "gone", "-v", "/data", "busybox", "true")
    code, _, err = cli("system", "prune", "-f", "--volumes", "--filter", "until=1h")
    assert (code, err.strip()) == (1, 'error: The "until" filter is not supported with "--volumes"')
    code, _, err = cli("system", "prune", "-f", "--filter", "dangling=true")
    assert (code, err.strip()) == (1, "error: Invalid filter 'dangling'")
    assert _names(cli) == ["gone"]  # refused before anything was removed
    gone = _id(cli, "gone")
    volume = cli.ok("volume", "ls", "-q").strip()
    out = cli.ok("system", "prune", "-f", "--volumes")
    assert out.startswith(f"Deleted Containers:\n{gone}\n\nDeleted Volumes:\n{volume}\n\n")
    assert out.endswith("Total reclaimed space: 0B\n")
    assert (_names(cli), cli.ok("volume", "ls", "-q")) == ([], "")
    assert cli.ok("images", "-q") != ""  # busybox is tagged: not dangling
