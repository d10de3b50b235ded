from __future__ import annotations

import pytest

from lamina.build.changes import apply_changes
from lamina.errors import UsageError


def test_cmd_exec_and_shell_forms() -> None:
    assert apply_changes({}, ['CMD ["/bin/sh"]'])["Cmd"] == ["/bin/sh"]
    assert apply_changes({}, ["CMD echo hi"])["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert apply_changes({}, ['ENTRYPOINT ["/e", "x"]'])["Entrypoint"] == ["/e", "x"]


def test_env_replaces_in_place_and_appends() -> None:
    # Docker's dispatchEnv: an existing key keeps its place, a new one goes last.
    cfg = apply_changes({"Env": ["A=1", "PATH=/bin"]}, ["ENV A=2 B=3", "ENV C hello world"])
    assert cfg["Env"] == ["A=2", "PATH=/bin", "B=3", "C=hello world"]


def test_words_expand_against_the_config_as_dockers_builder() -> None:
    # docker commit --change 'ENV PATH=$PATH:/opt/bin': the image's PATH, not "$PATH".
    cfg = apply_changes(
        {"Env": ["PATH=/bin", "APP=/srv/app"], "WorkingDir": "/srv"},
        ["ENV PATH=$PATH:/opt/bin", "LABEL home=${APP}", "WORKDIR data", "WORKDIR ${APP}/x/.."],
    )
    assert cfg["Env"] == ["PATH=/bin:/opt/bin", "APP=/srv/app"]
    assert cfg["Labels"] == {"home": "/srv/app"}
    assert cfg["WorkingDir"] == "/srv/app"
    assert apply_changes({}, ["WORKDIR rel"])["WorkingDir"] == "/rel"


def test_an_entrypoint_without_a_cmd_clears_the_images_cmd() -> None:
    base = {"Cmd": ["/bin/sh"]}
    assert "Cmd" not in apply_changes(base, ['ENTRYPOINT ["/e"]'])
    both = apply_changes(base, ['CMD ["x"]', 'ENTRYPOINT ["/e"]'])
    assert (both["Entrypoint"], both["Cmd"]) == (["/e"], ["x"])


def test_a_change_holding_a_second_line_is_checked_too() -> None:
    assert apply_changes({}, ["ENV A=1\nLABEL b=2"]) == {"Env": ["A=1"], "Labels": {"b": "2"}}
    with pytest.raises(UsageError, match="RUN is not a valid change command"):
        apply_changes({}, ["ENV A=1\nRUN rm -rf /"])
    with pytest.raises(UsageError, match="FROM is not a valid change command"):
        apply_changes({}, ["ENV A=1", "FROM busybox\nENV B=2"])
    with pytest.raises(UsageError, match="invalid --change"):
        apply_changes({}, ["ENV"])


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
