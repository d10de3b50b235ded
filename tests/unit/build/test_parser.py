"""Typed instructions. Expected values are the Dockerfile reference's
(moby/buildkit frontend/dockerfile/docs/reference.md, quoted in comments) or hand-derived from
its rules; none were produced by running lamina."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.build.expand import expand_heredoc, expand_key_values, expand_word
from lamina.build.instructions import (
    Add,
    Arg,
    ArgDecl,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Form,
    From,
    Healthcheck,
    Label,
    Maintainer,
    MountType,
    NetworkMode,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    parse_duration,
)
from lamina.build.parser import parse

GOLDEN = Path(__file__).parents[2] / "data" / "dockerfiles"


def _golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def test_reference_format_examples() -> None:
    df = parse(_golden("reference_format.Dockerfile"))
    # "ARG CODE_VERSION=latest / FROM base:${CODE_VERSION} ... FROM extras:${CODE_VERSION}"
    assert df.global_args[0].args == (ArgDecl(name="CODE_VERSION", default="latest"),)
    assert [s.from_.image for s in df.stages] == ["base:${CODE_VERSION}", "extras:${CODE_VERSION}"]
    first = df.stages[0].instructions
    assert first[0] == Cmd(
        line=5,
        end_line=5,
        column=1,
        original="CMD  /code/run-app",
        command=Command(form=Form.SHELL, args=("/code/run-app",)),
    )
    # "RUN echo 'we are running some # of cool things'": # inside a line is an argument.
    assert isinstance(first[1], Run)
    assert first[1].command.args == ("echo 'we are running some # of cool things'",)
    # "RUN echo hello \ / # comment / world" is equivalent to "RUN echo hello \ / world".
    assert isinstance(first[2], Run)
    assert first[2].command.args == ("echo hello world",)
    assert (first[2].line, first[2].end_line) == (8, 10)
    # Leading whitespace before comments and instructions is ignored.
    assert isinstance(first[3], Run)
    assert first[3].command.args == ("echo hello",)
    assert first[3].column == 5
    # "RUN source $HOME/.bashrc && \ / echo $HOME" == "RUN source $HOME/.bashrc && echo $HOME"
    assert isinstance(first[6], Run)
    assert first[6].command.args == ("source $HOME/.bashrc && echo $HOME",)
    assert first[7] == Entrypoint(
        line=19,
        end_line=19,
        column=1,
        original='ENTRYPOINT ["/bin/bash", "-c", "echo hello"]',
        command=Command(form=Form.EXEC, args=("/bin/bash", "-c", "echo hello")),
    )
    # 'RUN ["c:\windows\system32\tasklist.exe"]' "would otherwise be treated as shell form
    # due to not being valid JSON"; with doubled backslashes it is the exec form.
    assert isinstance(first[8], Run)
    assert first[8].command.form is Form.SHELL
    assert isinstance(first[9], Run)
    assert first[9].command == Command(
        form=Form.EXEC, args=("c:\\windows\\system32\\tasklist.exe",)
    )


def test_reference_environment_replacement_example() -> None:
    # "ENV FOO=/bar / WORKDIR ${FOO} # WORKDIR /bar / ADD . $FOO # ADD . /bar /
    #  COPY \$FOO /quux # COPY $FOO /quux"
    df = parse(_golden("reference_format.Dockerfile"))
    body = df.stages[0].instructions
    env = dict(expand_key_values("FOO=/bar", env={}, line=1))
    workdir, add, copy = body[11], body[12], body[13]
    assert isinstance(workdir, Workdir)
    assert isinstance(add, Add)
    assert isinstance(copy, Copy)
    assert expand_word(workdir.path, env=env, line=workdir.line) == "/bar"
    assert [expand_word(w, env=env, line=1) for w in (*add.sources, add.dest)] == [".", "/bar"]
    assert [expand_word(w, env=env, line=1) for w in (*copy.sources, copy.dest)] == [
        "$FOO",
        "/quux",
    ]


def test_reference_env_examples() -> None:
    df = parse(_golden("reference_format.Dockerfile"))
    envs = [i for i in df.stages[0].instructions if isinstance(i, Env)]
    values = [
        [(expand_word(k, env={}, line=1), expand_word(v, env={}, line=1)) for k, v in e.pairs]
        for e in envs[4:8]
    ]
    # 'ENV MY_NAME="John Doe"', 'ENV MY_DOG=Rex\ The\ Dog', 'ENV MY_CAT=fluffy'
    assert values[:3] == [
        [("MY_NAME", "John Doe")],
        [("MY_DOG", "Rex The Dog")],
        [("MY_CAT", "fluffy")],
    ]
    # The same three on one continued line.
    assert values[3] == [("MY_NAME", "John Doe"), ("MY_DOG", "Rex The Dog"), ("MY_CAT", "fluffy")]
    # The alternative syntax "ENV MY_VAR my-value".
    assert envs[8].pairs == (("MY_VAR", "my-value"),)


def test_reference_env_uses_values_from_before_the_instruction() -> None:
    # "ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc":
    # "The value of def becomes hello. The value of ghi becomes bye."
    env: dict[str, str] = {}
    for text in ("abc=hello", "abc=bye def=$abc", "ghi=$abc"):
        env.update(expand_key_values(text, env=env, line=1))
    assert env == {"abc": "bye", "def": "hello", "ghi": "bye"}


def test_reference_label_examples() -> None:
    df = parse(_golden("reference_format.Dockerfile"))
    labels = [i for i in df.stages[0].instructions if isinstance(i, Label)]
    got = [
        (expand_word(k, env={}, line=1), expand_word(v, env={}, line=1))
        for lab in labels
        for k, v in lab.pairs
    ]
    # docker inspect in the reference shows these values.
    assert got[:4] == [
        ("com.example.vendor", "ACME Incorporated"),
        ("com.example.label-with-value", "foo"),
        ("version", "1.0"),
        ("description", "This text illustrates that label-values can span multiple lines."),
    ]
    expected = [("multi.label1", "value1"), ("multi.label2", "value2"), ("other", "value3")]
    assert got[4:7] == expected
    assert got[7:] == expected


def test_reference_healthcheck_and_others() -> None:
    df = parse(_golden("reference_format.Dockerfile"))
    by_type = {type(i): i for i in df.stages[0].instructions}
    health = by_type[Healthcheck]
    assert isinstance(health, Healthcheck)
    # "HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1"
    assert health.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert health.interval_ns == 5 * 60 * 10**9
    assert health.timeout_ns == 3 * 10**9
    assert (health.start_period_ns, health.start_interval_ns, health.retries) == (0, 0, 0)
    assert by_type[Shell] == Shell(
        line=48,
        end_line=48,
        column=1,
        original='SHELL ["/bin/bash", "-c"]',
        args=("/bin/bash", "-c"),
    )
    assert isinstance(by_type[Stopsignal], Stopsignal)
    assert by_type[Stopsignal].signal == "SIGKILL"  # type: ignore[attr-defined]
    assert by_type[User].user == "patrick"  # type: ignore[attr-defined]
    volumes = [i for i in df.stages[0].instructions if isinstance(i, Volume)]
    assert [(v.paths, v.form) for v in volumes] == [
        (("/data",), Form.EXEC),
        (("/var/log", "/var/db"), Form.SHELL),
    ]
    exposes = [i.ports for i in df.stages[0].instructions if isinstance(i, Expose)]
    assert exposes == [("80/udp",), ("80/tcp",)]
    onbuilds = [i for i in df.stages[0].instructions if isinstance(i, Onbuild)]
    # "ONBUILD ADD . /app/src / ONBUILD RUN /usr/local/bin/python-build --dir /app/src"
    assert [o.expression for o in onbuilds] == [
        "ADD . /app/src",
        "RUN /usr/local/bin/python-build --dir /app/src",
    ]
    assert isinstance(onbuilds[0].trigger, Add)
    assert onbuilds[0].trigger.sources == (".",)
    args = [i for i in df.stages[0].instructions if isinstance(i, Arg)]
    assert [a.args for a in args] == [
        (ArgDecl(name="user1", default="someuser"),),
        (ArgDecl(name="buildno", default="1"),),
    ]


def test_reference_heredoc_examples() -> None:
    df = parse(_golden("reference_heredocs.Dockerfile"))
    assert df.directives == (("syntax", "docker/dockerfile:1"),)
    body = df.stages[0].instructions
    first = body[0]
    assert isinstance(first, Run)
    assert first.command.args == ("<<EOT bash",)
    assert first.heredocs[0].content == "  set -ex\n  apt-get update\n  apt-get install -y vim\n"
    assert first.inline_script() is None  # "RUN <<EOT bash": bash reads the heredoc
    # "If the command only contains a here-document, its contents is evaluated with the
    # default shell."
    only = body[1]
    assert isinstance(only, Run)
    assert only.inline_script() is not None
    assert only.inline_script().content == "  mkdir -p foo/bar\n"  # type: ignore[union-attr]
    shebang = body[2]
    assert isinstance(shebang, Run)
    assert shebang.heredocs[0].content.startswith("#!/usr/bin/env python\n")
    # "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2"
    two = body[3]
    assert isinstance(two, Run)
    assert [(h.name, h.content) for h in two.heredocs] == [
        ("FILE1", "I am\nfirst\n"),
        ("FILE2", "I am\nsecond\n"),
    ]
    assert two.shell_text() == (
        "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"
    )
    # 'COPY <<EOF greeting.txt' creates greeting.txt containing "hello world".
    greeting = body[4]
    assert isinstance(greeting, Copy)
    assert greeting.sources == ()
    assert greeting.dest == "greeting.txt"
    assert greeting.inline[0].content == "hello world\n"
    # 'ARG FOO=bar / COPY <<-EOT /script.sh / echo "hello ${FOO}"': the script prints
    # "hello bar" because the variable is expanded by COPY; quoting EOT defers it to runtime.
    expanded, quoted = body[6], body[7]
    assert isinstance(expanded, Copy)
    assert isinstance(quoted, Copy)
    doc = expanded.inline[0]
    assert (doc.expand, doc.chomp) == (True, True)
    assert expand_heredoc(doc.content, env={"FOO": "bar"}, line=1) == '  echo "hello bar"\n'
    assert quoted.inline[0].expand is False
    assert quoted.inline[0].content == '  echo "hello ${FOO}"\n'
    # "<<-" strips leading tabs from the body and the delimiter line.
    tabbed = body[8]
    assert isinstance(tabbed, Run)
    assert tabbed.heredocs[0].content == "echo tab-indented\n"
    fd3 = body[9]
    assert isinstance(fd3, Run)
    assert fd3.heredocs[0].file_descriptor == 3
    # JSON form never opens a heredoc.
    exec_form = body[10]
    assert isinstance(exec_form, Run)
    assert exec_form.command == Command(form=Form.EXEC, args=("<<EOF",))
    assert exec_form.heredocs == ()
    names = body[11]
    assert isinstance(names, Run)
    assert [(h.name, h.expand) for h in names.heredocs] == [("E F", False), ("G", False)]


def test_escape_directive_backtick() -> None:
    # "# escape=` / FROM microsoft/nanoserver / COPY testfile.txt c:\ / RUN dir c:\" succeeds:
    # the backslashes are path separators, not escapes.
    df = parse(_golden("reference_escape_backtick.Dockerfile"))
    assert df.escape == "`"
    copy, run = df.stages[0].instructions
    assert isinstance(copy, Copy)
    assert (copy.sources, copy.dest) == (("testfile.txt",), "c:\\")
    assert isinstance(run, Run)
    assert run.command.args == ("dir c:\\",)


def test_escape_directive_backslash_follows_buildkit() -> None:
    # The reference's failing example shows the classic builder joining lines 2 and 3
    # ("COPY testfile.txt c:\RUN dir c:"). BuildKit (checked with the dockerfile oracle in
    # test_parser_oracle.py) does not continue a line ending in an escaped escape, and lamina
    # follows BuildKit; the trailing "\" at end of file is dropped.
    df = parse(_golden("reference_escape_backslash.Dockerfile"))
    copy, run = df.stages[0].instructions
    assert isinstance(copy, Copy)
    assert copy.dest == "c:\\\\"
    assert isinstance(run, Run)
    assert run.command.args == ("dir c:",)


def test_windows_shell_example() -> None:
    df = parse(_golden("reference_shell_windows.Dockerfile"))
    body = df.stages[0].instructions
    assert isinstance(body[0], Shell)
    assert body[0].args == ("powershell", "-command")
    add = body[2]
    assert isinstance(add, Add)
    assert add.dest == "c:\\example\\"
    joined = body[4]
    assert isinstance(joined, Run)
    assert joined.command.args == ("echo a     b ``",)


def test_directives() -> None:
    # "#directive=value", "# directive =value", "#\tdirective= value", "# directive = value",
    # "#\t  dIrEcTiVe=value" are all treated identically.
    for line in ("#escape=`", "# escape =`", "#\tescape= `", "# escape = `", "#\t  eScApE=`"):
        assert parse(f"{line}\nFROM x\n").escape == "`"
    # A directive after a comment, blank line or instruction is a comment.
    assert parse("# About my dockerfile\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("# unknowndirective=value\n# syntax=value\nFROM x\n").directives == ()
    assert parse("# check=skip=all\nFROM x\n").directives == (("check", "skip=all"),)


def test_syntax_edges() -> None:
    df = parse(_golden("syntax_edges.Dockerfile"))
    assert df.directives == ()  # "#directive=value" is unknown, so everything after is comment
    stage = df.stages[0]
    assert stage.from_.stage_name == "builder"
    assert stage.from_.image == "alpine:3.19"
    run = stage.instructions[0]
    assert isinstance(run, Run)
    cache, secret = run.mounts
    assert (cache.type, cache.target, cache.id) == (MountType.CACHE, "/root/.cache", "pip")
    assert (secret.type, secret.id, secret.required) == (MountType.SECRET, "token", True)
    assert run.network is NetworkMode.NONE
    # Empty continuation lines and comments inside continuations vanish.
    joined = stage.instructions[1]
    assert isinstance(joined, Run)
    assert joined.command.args == ("a     b     c",)
    bind = stage.instructions[2]
    assert isinstance(bind, Run)
    assert bind.mounts[0].from_ == "builder"
    assert bind.command == Command(form=Form.EXEC, args=("ls", "-l", "/in"))
    copy = stage.instructions[3]
    assert isinstance(copy, Copy)
    assert (copy.from_, copy.chown, copy.chmod) == ("builder", "app:app", "0755")
    link = stage.instructions[4]
    assert isinstance(link, Copy)
    assert (link.link, link.parents, link.sources) == (True, True, ("a/b", "c/d"))
    spaced = stage.instructions[5]
    assert isinstance(spaced, Copy)
    assert (spaced.sources, spaced.dest) == (("with space",), "/dst dir/")
    add = stage.instructions[6]
    assert isinstance(add, Add)
    assert add.checksum is not None
    git = stage.instructions[7]
    assert isinstance(git, Add)
    assert git.keep_git_dir is True
    bad_json = stage.instructions[8]
    assert isinstance(bad_json, Cmd)
    assert bad_json.command == Command(form=Form.SHELL, args=('[ "not json"',))
    empty = stage.instructions[9]
    assert isinstance(empty, Cmd)
    assert empty.command == Command(form=Form.EXEC, args=())
    dashdash = stage.instructions[11]
    assert isinstance(dashdash, Run)
    assert dashdash.flags == ()
    assert dashdash.command.args == ("--not-a-flag",)
    onbuild = stage.instructions[12]
    assert isinstance(onbuild, Onbuild)
    assert isinstance(onbuild.trigger, Copy)
    assert onbuild.trigger.from_ == "builder"
    health = stage.instructions[13]
    assert isinstance(health, Healthcheck)
    assert health == Healthcheck(
        line=health.line,
        end_line=health.end_line,
        column=1,
        original=health.original,
        flags=health.flags,
        test=("CMD", "curl", "-f", "http://localhost/"),
        interval_ns=90 * 10**9,
        timeout_ns=10 * 10**9,
        start_period_ns=5 * 10**9,
        start_interval_ns=10**9,
        retries=5,
    )
    none = stage.instructions[14]
    assert isinstance(none, Healthcheck)
    assert none.test == ("NONE",)
    env = stage.instructions[16]
    assert isinstance(env, Env)
    assert [(k, expand_word(v, env={"quoted": "X"}, line=1)) for k, v in env.pairs] == [
        ("A", "1"),
        ("B", "two words"),
        ("C", "single $quoted"),  # single quotes suppress expansion
        ("D", "$literal"),
    ]
    arg = stage.instructions[18]
    assert isinstance(arg, Arg)
    assert arg.args == (
        ArgDecl(name="X", default=None),
        ArgDecl(name="Y", default="2"),
        ArgDecl(name="Z", default='"q r"'),
    )
    workdir = stage.instructions[19]
    assert isinstance(workdir, Workdir)
    assert workdir.path == "/a b"
    maintainer = stage.instructions[20]
    assert isinstance(maintainer, Maintainer)
    assert maintainer.name == "Jane Doe <jane@example.com>"


def test_from_platform_and_multistage() -> None:
    df = parse(
        "FROM --platform=$BUILDPLATFORM golang AS build\nRUN x\n"
        "FROM scratch\nCOPY --from=build /a /a\n"
    )
    assert [s.name for s in df.stages] == ["build", None]
    assert df.stages[0].from_ == From(
        line=1,
        end_line=1,
        column=1,
        original="FROM --platform=$BUILDPLATFORM golang AS build",
        flags=("--platform=$BUILDPLATFORM",),
        image="golang",
        platform="$BUILDPLATFORM",
        stage_name="build",
    )


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1h30m", 5_400 * 10**9),
        ("1.5s", 1_500_000_000),
        ("300ms", 300_000_000),
        ("2us", 2_000),
        ("-1s", -(10**9)),
        (".5s", 500_000_000),
    ],
)
def test_parse_duration_is_go_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1.s.", "."])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_inline_script_only_when_the_command_is_one_heredoc() -> None:
    # BuildKit runs the body itself only for "RUN <<EOF" (MustParseHeredoc of the whole line).
    runs = (
        parse('FROM x\nRUN <<"E F"\nbody\nE F\nRUN <<EOF cat\nbody\nEOF\nRUN 2<<-X\n\tbody\n\tX\n')
        .stages[0]
        .instructions
    )
    scripts = [r.inline_script() for r in runs if isinstance(r, Run)]
    assert [s.content if s else None for s in scripts] == ["body\n", None, "body\n"]


def test_original_text_is_kept_for_history() -> None:
    df = parse("FROM x\nLABEL a=b \\\n  c=d\nUSER  me\n")
    label, user = df.stages[0].instructions
    assert label.original == "LABEL a=b   c=d"
    assert user.original == "USER  me"
    assert isinstance(user, User)
    assert user.user == "me"


def test_a_blank_line_inside_a_continuation_is_warned_about_as_docker() -> None:
    # docker 20.10 printed, before "Step 1/2":
    #   [WARNING]: Empty continuation line found in:
    #       RUN echo one   two   three
    #   [WARNING]: Empty continuation lines will become errors in a future release.
    # A comment line inside a continuation is no blank line.
    df = parse("FROM x\nRUN echo one \\\n# a comment\n  two \\\n\n  three\n")
    assert df.warnings == (
        "[WARNING]: Empty continuation line found in:\n    RUN echo one   two   three",
        "[WARNING]: Empty continuation lines will become errors in a future release.",
    )
    assert parse("FROM x\nRUN echo one \\\n# a comment\n  two\n").warnings == ()
