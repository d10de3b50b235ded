"""How ``cp`` reads a path: only the trailing form means something, as in moby's pkg/archive
(``specifiesCurrentDir``: the last element is "."; ``assertsDirectory``: that, or a trailing
separator; the client's ``filepath.Abs`` for host paths)."""

from __future__ import annotations

import os

import pytest

from lamina.engine.container_cp import CpPath


@pytest.mark.parametrize(
    ("given", "path", "contents", "directory"),
    [
        ("/w/src", "/w/src", False, False),
        ("/w/src/", "/w/src", False, True),
        ("/w/src//", "/w/src", False, True),
        ("/w/src/.", "/w/src", True, True),
        ("/w/src/./", "/w/src", True, True),
        ("w/./src", "/w/src", False, False),
        ("/", "/", True, True),
        ("/.", "/", True, True),
        ("", "/", True, True),
        # ".." by the string from "/", as the daemon's filepath.Join("/", path)
        ("/w/src/sub/..", "/w/src", False, False),
        ("/w/src/sub/../", "/w/src", False, True),
        ("/w/src/sub/../.", "/w/src", True, True),
        ("../../../etc/passwd", "/etc/passwd", False, False),
        ("/..", "/", True, True),
    ],
)
def test_container_paths(given: str, path: str, contents: bool, directory: bool) -> None:
    p = CpPath.in_container(given)
    assert (p.path, p.contents, p.directory) == (path, contents, directory)


def test_parent_and_name() -> None:
    p = CpPath.in_container("/w/src/.")
    assert (p.parent, p.name) == ("/w", "src")
    root = CpPath.in_container("/")
    assert (root.parent, root.name) == ("/", "")


@pytest.mark.parametrize(
    ("given", "rel", "contents", "directory"),
    [
        ("src", "src", False, False),
        ("src/", "src", False, True),
        ("src/.", "src", True, True),
        (".", "", True, True),
        ("./", "", True, True),
        ("src/sub/..", "src", False, False),  # by the string, as filepath.Abs cleans it
        ("src/sub/../.", "src", True, True),
    ],
)
def test_host_paths_are_made_absolute_keeping_the_trailing_form(
    given: str, rel: str, contents: bool, directory: bool
) -> None:
    p = CpPath.on_host(given)
    assert p.path == os.path.join(os.getcwd(), rel).rstrip("/")
    assert (p.contents, p.directory) == (contents, directory)
