"""``--mount`` and ``--tmpfs`` as docker 20.10 reads them: the CLI's parse (cli/opts/mount.go)
and the daemon's checks (volume/mounts/linux_parser.go). Every expected text below is what
docker 20.10.24 printed for the same spec (after ``Error response from daemon:`` where the
daemon said it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.engine.container_config import VolumeArg, merged_volumes
from lamina.engine.mount_args import (
    check_mount,
    mount_tmpfs_data,
    parse_mount,
    parse_tmpfs,
    ram_in_bytes,
    tmpfs_options,
    volume_arg,
)
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("spec", "api"),
    [
        # docker inspect -f '{{json .HostConfig.Mounts}}' of containers made with these:
        (
            "type=bind,src=/h,dst=/b,readonly",
            {"Type": "bind", "Source": "/h", "Target": "/b", "ReadOnly": True},
        ),
        (
            "type=volume,source=mv,target=/v,volume-nocopy,volume-label=a=b",
            {
                "Type": "volume",
                "Source": "mv",
                "Target": "/v",
                "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}, "DriverConfig": {}},
            },
        ),
        (
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1016}},
        ),
        ("type=volume,dst=/anon", {"Type": "volume", "Target": "/anon"}),
        ("dst=/anon,ro=false", {"Type": "volume", "Target": "/anon"}),  # volume by default
        (
            "type=bind,src=/h,dst=/x,bind-propagation=rslave,bind-nonrecursive",
            {
                "Type": "bind",
                "Source": "/h",
                "Target": "/x",
                "BindOptions": {"Propagation": "rslave", "NonRecursive": True},
            },
        ),
        (
            'TYPE=volume,"src=v,w",destination=/x',
            {"Type": "volume", "Source": "v,w", "Target": "/x"},
        ),
    ],
)
def test_parse_mount_gives_the_apis_mount(spec: str, api: dict[str, object]) -> None:
    assert parse_mount(spec) == api


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        # docker run --mount SPEC: 'invalid argument "SPEC" for "--mount" flag: REASON'
        ("type=volume,src=v", "target is required"),
        ("bogus=1,dst=/x", "unexpected key 'bogus' in 'bogus=1'"),
        ("type=volume,src=v,dst=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=tmpfs,dst=/x,tmpfs-size=abc", "invalid value for tmpfs-size: abc"),
        ("type=tmpfs,dst=/x,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
        ("type=volume,src=v,dst=/x,foo", "invalid field 'foo' must be a key=value pair"),
        ("type=volume,src=v,dst=/x,volume-nocopy=maybe", "invalid value for volume-nocopy: maybe"),
        (
            "type=volume,src=v,dst=/x,bind-propagation=shared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=bind,src=/h,dst=/x,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'bind'",
        ),
        (
            "type=volume,src=v,dst=/x,tmpfs-size=1m",
            "cannot mix 'tmpfs-*' options with mount type 'volume'",
        ),
    ],
)
def test_the_clis_refusals(spec: str, reason: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_mount(spec)
    assert str(err.value) == f'invalid argument "{spec}" for "--mount" flag: {reason}'


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        # docker: 'Error response from daemon: invalid mount config for type "T": REASON'
        ("type=bind,dst=/x", "field Source must not be empty"),
        ("type=bind,src=/nonexist-9f2c,dst=/x", "bind source path does not exist: /nonexist-9f2c"),
        ("type=foo,dst=/x", "mount type unknown"),
        ("type=volume,dst=x", "invalid mount path: 'x' mount path must be absolute"),
        ("type=tmpfs,src=/a,dst=/x", "field Source must not be specified"),
        ("type=bind,src=/,dst=/x,bind-propagation=weird", "invalid propagation mode: weird"),
        ("type=bind,src=rel,dst=/x", "invalid mount path: 'rel' mount path must be absolute"),
        ("type=volume,src=vv,dst=/", "invalid specification: destination can't be '/'"),
        ("type=volume,dst=/x,ro", "must not set ReadOnly mode when using anonymous volumes"),
    ],
)
def test_the_daemons_refusals(spec: str, reason: str) -> None:
    m = parse_mount(spec)
    with pytest.raises(UsageError) as err:
        check_mount(m)
    assert str(err.value) == f'invalid mount config for type "{m["Type"]}": {reason}'


def test_mounts_become_the_volume_args_v_makes(tmp_path: Path) -> None:
    bind = parse_mount(f"type=bind,src={tmp_path}/,dst=/b/,ro,bind-propagation=private")
    check_mount(bind)
    assert volume_arg(bind) == VolumeArg(
        source=str(tmp_path),
        destination="/b",
        mode="",
        long_syntax=True,
        readonly=True,
        propagation="private",
    )
    vol = volume_arg(parse_mount("type=volume,dst=/v,volume-nocopy,volume-label=k"))
    assert (vol.source, vol.mode, vol.no_copy, vol.labels, vol.is_bind) == (
        None,
        "z",  # docker shows Mode "z" for a --mount volume, anonymous too
        True,
        {"k": ""},
        False,
    )


def test_duplicate_mount_points_follow_the_daemon() -> None:
    # docker create: "Duplicate mount point: /t" for --mount bind + -v bind, two --mount at
    # /t, --tmpfs /t + -v /h:/t, tmpfs --mount + -v nv:/t; accepted: --tmpfs /t with -v /t
    # or any --mount at /t, a tmpfs --mount with -v /t.
    def v(spec: str) -> VolumeArg:
        src, _, dst = spec.rpartition(":")
        return VolumeArg(source=src or None, destination=dst, mode="")

    def m(spec: str) -> VolumeArg:
        return volume_arg(parse_mount(spec))

    refused = [
        ([v("/tmp:/t"), m("type=bind,src=/tmp,dst=/t")], (), ()),
        ([m("type=volume,dst=/t"), m("type=volume,dst=/t")], (), ()),
        ([v("/tmp:/t")], ("/t",), ()),
        ([v("nv:/t")], (), ("/t",)),
        ([m("type=volume,dst=/t")], (), ("/t",)),
    ]
    for args, tmpfs, tmpfs_mounts in refused:
        with pytest.raises(UsageError, match=r"^Duplicate mount point: /t$"):
            merged_volumes(args, tmpfs=tmpfs, tmpfs_mounts=tmpfs_mounts)
    assert merged_volumes([v("/t")], tmpfs=("/t",)) == [v("/t")]
    assert merged_volumes([m("type=volume,dst=/t")], tmpfs=("/t",)) == [m("type=volume,dst=/t")]
    assert merged_volumes([v("/t")], tmpfs_mounts=("/t",)) == []
    assert merged_volumes([v("/t"), m("type=volume,src=nv,dst=/t")]) == [
        m("type=volume,src=nv,dst=/t")
    ]


def test_tmpfs_options_as_docker_mounts_them() -> None:
    # /proc/mounts in docker 20.10 containers: --tmpfs /t3 "rw,nosuid,nodev,noexec";
    # --tmpfs /t2:size=2m,exec,uid=5 "rw,nosuid,nodev,size=2048k,uid=5";
    # --mount type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770 "...,noexec,size=1024k,mode=1770";
    # --mount type=tmpfs,dst=/t4,readonly "ro,nosuid,nodev,noexec".
    assert tmpfs_options("") == ["noexec", "nosuid", "nodev", "rprivate"]
    merged = ["nosuid", "nodev", "rprivate", "size=2m", "exec", "uid=5"]  # exec undid noexec
    assert tmpfs_options("size=2m,exec,uid=5") == merged
    tmpfs = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert mount_tmpfs_data(tmpfs) == "mode=1770,size=1m"
    assert mount_tmpfs_data(parse_mount("type=tmpfs,dst=/t,ro,tmpfs-size=1536k")) == (
        "ro,size=1536k"
    )
    # docker run --tmpfs /t:bogus: 'invalid tmpfs option ["bogus"]' (at start, exit 125)
    with pytest.raises(UsageError, match=r'^invalid tmpfs option \["bogus"\]$'):
        tmpfs_options("bogus")
    with pytest.raises(UsageError, match=r'^invalid tmpfs option \["foo" "2"\]$'):
        tmpfs_options("size=1m,foo=2")


def test_parse_tmpfs() -> None:
    assert parse_tmpfs("/t:size=1m:x") == ("/t", "size=1m:x")
    assert parse_tmpfs("/t") == ("/t", "")
    # docker create --tmpfs t: "invalid mount path: 't' mount path must be absolute"
    with pytest.raises(UsageError, match=r"^invalid mount path: 't' mount path must be absolute$"):
        parse_tmpfs("t")


@pytest.mark.parametrize(
    ("text", "size"),
    [("1m", 1 << 20), ("64M", 64 << 20), ("1.5g", 3 << 29), ("100", 100), ("2KiB", 2048)],
)
def test_ram_in_bytes(text: str, size: int) -> None:
    assert ram_in_bytes(text) == size


@pytest.mark.parametrize("text", ["abc", "-1", "1x", ""])
def test_ram_in_bytes_refuses(text: str) -> None:
    assert ram_in_bytes(text) is None


def test_a_volume_source_is_a_name_never_a_host_path() -> None:
    # docker 20.10: `--mount type=volume,src=/abs,dst=/x` is refused ('"/abs" includes invalid
    # characters for a local volume name ... If you intended to pass a host directory, use
    # absolute path'): the source of a volume mount never becomes a bind of the host's dir.
    for source in ("/etc", "../up", "a/b"):
        with pytest.raises(UsageError, match="invalid volume name"):
            check_mount(parse_mount(f"type=volume,src={source},dst=/x"))
    check_mount(parse_mount("type=volume,src=okname,dst=/x"))
