"""``--log-driver`` and ``--log-opt`` as docker 20.10 takes them; the words are the ones it
printed (``docker run --log-opt V busybox true``)."""

from __future__ import annotations

import pytest

from lamina.engine.log_args import log_config, log_options
from lamina.errors import UsageError
from lamina.runtime.logs import LogOptions


def test_log_config_as_docker_keeps_it() -> None:
    # docker inspect -f '{{json .HostConfig.LogConfig}}'
    assert log_config("", ["max-size=1k", "max-file=3"]) == {
        "Type": "json-file",
        "Config": {"max-file": "3", "max-size": "1k"},
    }
    assert log_config("json-file", ["max-size=1k", "max-size=2k"]) == {
        "Type": "json-file",
        "Config": {"max-size": "2k"},
    }
    assert log_config("none", []) == {"Type": "none", "Config": {}}
    assert log_config("", ["max-size"])["Config"] == {"max-size": ""}  # the start refuses it


@pytest.mark.parametrize(
    ("driver", "opts", "message"),
    [
        ("none", ["max-size=1k"], "invalid logging opts for driver none"),
        ("bogus", [], 'error looking up logging plugin bogus: plugin "bogus" not found'),
        ("", ["bogus=1"], "unknown log opt 'bogus' for json-file log driver"),
        # Docker's, which lamina does not do:
        ("syslog", [], "logging driver syslog is not supported by lamina (json-file, none)"),
        (
            "",
            ["tag=x"],
            "log opt 'tag' of the json-file log driver is not supported by lamina "
            "(max-size, max-file)",
        ),
    ],
)
def test_refused_at_create(driver: str, opts: list[str], message: str) -> None:
    with pytest.raises(UsageError) as err:
        log_config(driver, opts)
    assert str(err.value) == message


def test_options_as_the_json_file_logger_reads_them_at_start() -> None:
    def options(**config: str) -> LogOptions:
        return log_options({"Type": "json-file", "Config": config})

    assert options() == LogOptions()
    assert options(**{"max-size": "1k", "max-file": "3"}) == LogOptions(max_size=1000, max_files=3)
    assert options(**{"max-size": "10m"}).max_size == 10_000_000  # decimal, as FromHumanSize
    assert options(**{"max-size": "1.5KiB"}).max_size == 1500
    assert log_options({"Type": "none", "Config": {}}).driver == "none"
    for config, why in (
        ({"max-size": "x"}, "invalid size: 'x'"),
        ({"max-size": ""}, "invalid size: ''"),
        ({"max-size": "-1"}, "invalid size: '-1'"),
        ({"max-size": "0"}, "max-size must be a positive number"),
        ({"max-file": "0"}, "max-file cannot be less than 1"),
        ({"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
    ):
        with pytest.raises(UsageError) as err:
            options(**config)
        assert str(err.value) == f"failed to initialize logging driver: {why}"
