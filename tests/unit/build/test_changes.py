from __future__ import annotations

import pytest

from lamina.build.changes import apply_changes
from lamina.errors import UsageError


def test_cmd_exec_and_shell_forms() -> None:
    assert apply_changes({}, ['CMD ["/bin/sh"]'])["Cmd"] == ["/bin/sh"]
    assert apply_changes({}, ["CMD echo hi"])["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert apply_changes({}, ['ENTRYPOINT ["/e", "x"]'])["Entrypoint"] == ["/e", "x"]


def test_env_replaces_and_appends() -> None:
    cfg = apply_changes({"Env": ["A=1", "PATH=/bin"]}, ["ENV A=2 B=3", "ENV C hello world"])
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3", "C=hello world"]


def test_label_expose_volume_user_workdir() -> None:
    cfg = apply_changes(
        {},
        [
            'LABEL a=1 "b c"=2',
            "EXPOSE 80 53/udp",
            'VOLUME ["/data"]',
            "USER 1000:1000",
            "WORKDIR /srv",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN true",
        ],
    )
    assert cfg["Labels"] == {"a": "1", "b c": "2"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert (cfg["User"], cfg["WorkingDir"], cfg["StopSignal"]) == ("1000:1000", "/srv", "SIGINT")
    assert cfg["OnBuild"] == ["RUN true"]


def test_input_not_mutated() -> None:
    base = {"Env": ["A=1"]}
    apply_changes(base, ["ENV A=2"])
    assert base == {"Env": ["A=1"]}


def test_unknown_instruction_is_usage_error() -> None:
    with pytest.raises(UsageError, match="RUN"):
        apply_changes({}, ["RUN rm -rf /"])


def test_a_stopsignal_change_is_checked() -> None:
    assert apply_changes({}, ["STOPSIGNAL SIGRTMIN+3"])["StopSignal"] == "SIGRTMIN+3"
    with pytest.raises(UsageError, match="invalid signal: 'SIGFOO'"):
        apply_changes({}, ["STOPSIGNAL SIGFOO"])
