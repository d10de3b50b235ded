"""The command line as argparse reads it: the command table, lazy loading, docker's
``run IMAGE CMD...`` split, Go-style flags, usage errors. Nothing here opens a store."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from lamina.cli.command import Command
from lamina.cli.main import COMMANDS, GROUPS, load_command, main, parse


def test_the_table_names_every_command_of_every_module() -> None:
    """A call imports only the module the table names for its command, so the table is the
    registration: each entry must be a Command, and each Command a module defines must have an
    entry (else it could never be called)."""
    named = {id(load_command(words)) for words in COMMANDS}
    for module in {where.partition(".")[0] for where in COMMANDS.values()}:
        mod = importlib.import_module(f"lamina.cli.commands.{module}")
        for name, value in vars(mod).items():
            if isinstance(value, Command):
                assert id(value) in named, f"{module}.{name} has no entry in COMMANDS"
    for words in COMMANDS:
        group, _, verb = words.partition(" ")
        assert not verb or group in GROUPS, words
    assert set(GROUPS).isdisjoint(COMMANDS)


def test_docker_image_verbs_are_also_image_subcommands() -> None:
    for verb in ("load", "save", "copy", "history", "tag", "inspect", "import", "build"):
        assert COMMANDS[f"image {verb}"] == COMMANDS[verb]
    assert COMMANDS["image ls"] == COMMANDS["images"]
    assert COMMANDS["image rm"] == COMMANDS["rmi"]
    assert COMMANDS["container ls"] == COMMANDS["ps"]
    assert COMMANDS["container update"] == COMMANDS["update"] == "container_update.update"


def _modules_loaded(*argv: str, prefix: str = "lamina.cli.commands.") -> list[str]:
    code = (
        "import sys\n"
        "from lamina.cli.main import main\n"
        f"main({list(argv)!r})\n"
        f"print(sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = eval(r.stdout.splitlines()[-1])
    return loaded


def test_a_call_imports_only_the_module_of_its_command() -> None:
    assert _modules_loaded("--version") == []
    assert _modules_loaded("rm", "--help") == ["lamina.cli.commands.containers"]
    assert _modules_loaded("--root", "/nonexistent", "volume", "ls", "-h") == [
        "lamina.cli.commands.volumes"
    ]
    assert _modules_loaded("image", "load", "--help") == ["lamina.cli.commands.transfer"]
    assert _modules_loaded("update", "--help") == ["lamina.cli.commands.container_update"]
    assert _modules_loaded("--help", prefix="click") == []
    assert _modules_loaded("--version", prefix="dataclasses") == []
    assert _modules_loaded("--version", prefix="msgspec") == []
    assert len(_modules_loaded("--help")) == len({w.split(".")[0] for w in COMMANDS.values()})


def test_commands_load_msgspec_without_inspect_and_leave_typing_extensions_importable() -> None:
    assert _modules_loaded("rm", "--help", prefix="msgspec") != []
    assert _modules_loaded("rm", "--help", prefix="inspect") == []
    code = (
        "from lamina.cli.main import _import_msgspec\n"
        "_import_msgspec()\n"
        "import typing_extensions\n"
        "print(typing_extensions.__name__)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert r.stdout.strip() == "typing_extensions"


@pytest.mark.parametrize(
    ("argv", "image", "command"),
    [
        (["run", "--rm", "busybox", "ls", "-l", "/"], "busybox", ["ls", "-l", "/"]),
        (["run", "-e", "A=1", "busybox", "-e", "B=2", "--rm"], "busybox", ["-e", "B=2", "--rm"]),
        (["run", "busybox", "--help"], "busybox", ["--help"]),
        (["run", "--", "busybox", "true"], "busybox", ["true"]),
        # As docker's (and click's): after IMAGE, even "--" belongs to the command.
        (["run", "busybox", "--", "true"], "busybox", ["--", "true"]),
        (["create", "--name", "x", "busybox"], "busybox", []),
    ],
)
def test_options_end_at_the_image(argv: list[str], image: str, command: list[str]) -> None:
    ns = parse(argv)
    assert (ns.image, ns.command) == (image, command)


def test_run_options_before_the_image() -> None:
    ns = parse(["run", "--rm", "-it", "-e", "A=1", "-e", "B=2", "--net", "host", "busybox"])
    assert ns.auto_remove and ns.interactive and ns.tty
    assert ns.env == ["A=1", "B=2"] and ns.network == "host"
    assert parse(["run", "busybox"]).env == []  # append's default is not shared between parses


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["rm", "a", "-f", "b"], "containers", ["a", "b"]),
        (["inspect", "a", "-f", "{{.Id}}", "b"], "names", ["a", "b"]),
        (["images", "busybox", "-q"], "repository", "busybox"),
        (["extract", "img", "/a", "-o", "d", "/b"], "paths", ["/a", "/b"]),
        # "--" ends the options, and what follows it is positional even if it looks like one.
        (["rm", "--", "-x"], "containers", ["-x"]),
        (["rm", "-f", "--", "a", "-b"], "containers", ["a", "-b"]),
        (["images", "--", "-q"], "repository", "-q"),
    ],
)
def test_options_may_follow_positionals(argv: list[str], field: str, value: object) -> None:
    assert getattr(parse(argv), field) == value


def test_exec_splits_container_and_command() -> None:
    ns = parse(["exec", "-e", "X=y", "c1", "sh", "-c", "echo -n x"])
    assert (ns.container, ns.command, ns.env) == ("c1", ["sh", "-c", "echo -n x"], ["X=y"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exec", "c1"], "the following arguments are required: COMMAND"),
        (["run"], "the following arguments are required: IMAGE"),
        (["rmi"], "the following arguments are required: NAME"),
        (["images", "--bogus"], "unrecognized arguments: --bogus"),
        (["tag", "a", "b", "c"], "unrecognized arguments: c"),
        (["history", "-H=maybe", "x"], "'maybe' is not a valid boolean"),
        (["run", "--rm=maybe", "x"], "invalid argument 'maybe' for --rm: not a boolean"),
        (["nosuch"], "invalid choice: 'nosuch'"),
        (["image", "nosuch"], "invalid choice: 'nosuch'"),
        (["--storage-driver", "zfs", "images"], "invalid choice: 'zfs'"),
        (["report", "x", "-o", "/"], "argument -o/--output: file '/' is a directory"),
        (["load", "-i", "/nonexistent"], "path '/nonexistent' does not exist"),
        (["images", "--form", "json"], "unrecognized arguments: --form"),  # no abbreviations
    ],
)
def test_usage_errors_exit_2_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lamina"), err
    assert any(line.startswith("error: ") and message in line for line in err.splitlines()), err
    assert "hint: see 'lamina" in err


def test_storage_driver_from_the_environment_is_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAMINA_STORAGE_DRIVER", "zfs")
    assert main(["images"]) == 2
    assert "$LAMINA_STORAGE_DRIVER: invalid choice: 'zfs'" in capsys.readouterr().err
    monkeypatch.setenv("LAMINA_STORAGE_DRIVER", "vfs")
    monkeypatch.setenv("LAMINA_ROOT", "/dev/shm/somewhere")
    ns = parse(["images"])
    assert (ns.storage_driver, str(ns.store_root)) == ("vfs", "/dev/shm/somewhere")
    assert parse(["-s", "overlay2", "images"]).storage_driver == "overlay2"


def test_go_style_short_flags() -> None:
    assert parse(["history", "-H=false", "busybox"]).human is False
    # Only lamina's own options are split: a container's command keeps its tokens.
    ns = parse(["run", "-e=A=1", "--name", "n1", "-w=/", "busybox", "grep", "-e=x", "-H=false"])
    assert (ns.env, ns.name, ns.workdir) == (["A=1"], "n1", "/")
    assert ns.image == "busybox"
    assert ns.command == ["grep", "-e=x", "-H=false"]
    ns = parse(["exec", "-u=0", "c1", "env", "-u=FOO"])
    assert (ns.user, ns.container, ns.command) == ("0", "c1", ["env", "-u=FOO"])
    assert parse(["history", "--", "-H=false"]).image == "-H=false"
    # A Go bool flag is true bare and takes a value only after "=" (docker history -H IMAGE).
    assert parse(["history", "-H", "busybox"]).human is True
    assert (parse(["history", "busybox", "-H"]).human, parse(["commit", "-p", "c1"]).pause) == (
        True,
        True,
    )
    assert parse(["commit", "--pause=false", "c1", "ref"]).pause is False
    # And every store_true flag takes "=value" as Go's do: run --rm=false, -d=true.
    ns = parse(["run", "--rm=false", "-d=true", "-i=0", "busybox", "--rm=false"])
    assert (ns.auto_remove, ns.detach, ns.interactive) == (False, True, False)
    assert ns.command == ["--rm=false"]
    assert parse(["history", "--human=0", "busybox"]).human is False
    assert parse(["history", "busybox"]).human is True


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "lamina, version 0.1.0\n"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in ("build", "images", "run", "volume", "image"))
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lamina run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    assert "Remove the container when it exits." in out
    assert main(["image", "-h"]) == 0
    assert "    load " in capsys.readouterr().out


def test_a_group_or_nothing_alone_prints_the_help_as_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    assert "    images " in capsys.readouterr().err
    assert main(["volume"]) == 2
    assert "    prune " in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--root", "", "images"],  # "" is no directory: not the current one
        ["build", ""],
        ["export", "c1", "-o", ""],
        ["export", "c1", "-o", "/nonexistent-dir/out.tar"],
        ["export", "c1", "-o", "/"],
    ],
)
def test_empty_and_impossible_paths_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "error: argument " in capsys.readouterr().err


def test_update_needs_a_flag_and_parses_them_as_create(
    shm_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # docker 20.10: "you must provide one or more flags when using this command" (status 1),
    # checked before any container is looked for.
    root = str(shm_tmp / "root")
    assert main(["--root", root, "update", "c1", "c2"]) == 1
    assert capsys.readouterr().err == (
        "error: you must provide one or more flags when using this command\n"
    )
    # docker: invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots' (a flag
    # error; lamina's flag errors exit 2)
    assert main(["--root", root, "update", "-m", "lots", "c1"]) == 2
    assert 'invalid argument "lots" for "-m, --memory" flag' in capsys.readouterr().err
    assert main(["--root", root, "container", "update", "--cpus", "1/3", "c1"]) == 2
    assert "value is too precise" in capsys.readouterr().err
