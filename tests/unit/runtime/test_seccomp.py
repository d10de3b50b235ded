"""The default seccomp profile, resolved per capability set and architecture."""

from __future__ import annotations

import pytest

from lamina.runtime import defaults
from lamina.runtime.seccomp import default_profile


def _names(profile: dict[str, object]) -> set[str]:
    return {n for rule in profile["syscalls"] for n in rule["names"]}  # type: ignore[attr-defined]


def test_default_profile_shape() -> None:
    p = default_profile(capabilities=defaults.DEFAULT_CAPABILITIES, arch="amd64")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = _names(p)
    for allowed in ("read", "write", "execve", "openat", "clone", "arch_prctl", "chroot"):
        assert allowed in names
    # Reserved to capabilities the default set lacks.
    for refused in ("mount", "unshare", "setns", "reboot", "init_module", "bpf", "ptrace"):
        assert refused not in names or refused == "ptrace", refused
    # ptrace is allowed from kernel 4.8 on (seccomp can no longer be bypassed through it).


def test_clone_is_limited_to_no_namespace_flags_without_sys_admin() -> None:
    p = default_profile(capabilities=defaults.DEFAULT_CAPABILITIES, arch="amd64")
    clone = [r for r in p["syscalls"] if r["names"] == ["clone"]]
    assert clone == [
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    ]
    clone3 = [r for r in p["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_sys_admin_unlocks_mount_and_plain_clone() -> None:
    caps = [*defaults.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]
    p = default_profile(capabilities=caps, arch="amd64")
    assert {"mount", "umount2", "unshare", "setns", "clone3"} <= _names(p)
    assert not [r for r in p["syscalls"] if r["names"] == ["clone"] and r.get("args")]
    assert not [r for r in p["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"]


def test_arch_conditions() -> None:
    arm = default_profile(capabilities=(), arch="arm64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in _names(arm)
    assert "cacheflush" in _names(arm)
    with pytest.raises(ValueError, match="architecture"):
        default_profile(capabilities=(), arch="vax")
