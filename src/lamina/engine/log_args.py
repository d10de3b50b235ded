"""``--log-driver`` and ``--log-opt``, as docker 20.10 takes them: its CLI's
``parseLoggingOpts`` (KEY=VALUE, a bare KEY an empty value; none with the ``none`` driver),
its daemon's check at create (a driver it knows, a json-file option it knows), and the
json-file logger's reading of ``max-size`` (go-units ``FromHumanSize``: decimal units, ``1k``
is 1000 bytes) and ``max-file`` at each start ("failed to initialize logging driver: ...").

lamina logs with ``json-file`` (rotated by the shim, :mod:`lamina.runtime.logs`) or not at all
(``none``); Docker's other drivers, and the json-file options that change what an entry holds
(``tag``, ``labels``, ``env``, ...) or compress the rotated files, are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.runtime.logs import LogOptions

# Docker 20.10's built-in logging drivers; another name is a plugin it looks for.
_DOCKER_DRIVERS: Final = (
    *("awslogs", "etwlogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local"),
    *("logentries", "none", "splunk", "syslog"),
)
DRIVERS: Final = ("json-file", "none")  # lamina's
# jsonfilelog.ValidateLogOpt's keys, and the ones lamina's json-file log honours.
_JSON_FILE_KEYS: Final = (
    *("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"),
)
_KEYS: Final = ("max-file", "max-size")
_ATOI: Final = re.compile(r"[+-]?[0-9]+")


def log_config(driver: str, opts: Sequence[str]) -> dict[str, Any]:
    """HostConfig.LogConfig for ``--log-driver`` (Docker's default: json-file) and the
    ``--log-opt`` KEY=VALUE list (a later KEY winning), refused as Docker's CLI and daemon
    refuse them at create; UsageError in their words, or naming what lamina does not do."""
    config: dict[str, str] = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        config[key] = value
    driver = driver or "json-file"
    if driver == "none" and opts:
        raise UsageError("invalid logging opts for driver none")
    if driver not in _DOCKER_DRIVERS:
        raise UsageError(f'error looking up logging plugin {driver}: plugin "{driver}" not found')
    if driver not in DRIVERS:
        raise UsageError(f"logging driver {driver} is not supported by lamina (json-file, none)")
    for key in config:
        if key not in _JSON_FILE_KEYS:
            raise UsageError(f"unknown log opt '{key}' for json-file log driver")
        if key not in _KEYS:
            raise UsageError(
                f"log opt '{key}' of the json-file log driver is not supported by lamina "
                "(max-size, max-file)"
            )
    return {"Type": driver, "Config": dict(sorted(config.items()))}  # a Go map: sorted


def log_options(log_config: Mapping[str, Any]) -> LogOptions:
    """The shim's :class:`~lamina.runtime.logs.LogOptions` for a stored LogConfig, read as
    the json-file logger reads them at start; UsageError in its words."""
    from lamina.engine.go_units import parse_size
    from lamina.runtime.logs import LogOptions

    driver = str(log_config.get("Type") or "json-file")
    config = log_config.get("Config") or {}
    max_size, max_files = -1, 1
    try:
        if "max-size" in config:
            max_size = parse_size(config["max-size"], binary=False)
            if max_size <= 0:
                raise ValueError("max-size must be a positive number")
        if "max-file" in config:
            text = config["max-file"]
            if not _ATOI.fullmatch(text):
                raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
            max_files = int(text)
            if max_files < 1:
                raise ValueError("max-file cannot be less than 1")
    except ValueError as exc:
        raise UsageError(f"failed to initialize logging driver: {exc}") from None
    return LogOptions(driver=driver, max_size=max_size, max_files=max_files)
