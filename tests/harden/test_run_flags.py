"""The pure parts of `harden container`: tmpfs from writes, capabilities from EPERM lines, limits from stats."""

from __future__ import annotations

from portcullis.harden.run_flags import (
    MIB,
    RunProposal,
    capability_hints,
    limits_from_stats,
    non_root_users,
    runs_as_root,
    tmpfs_from_changes,
)


def changes(*entries: tuple[int, str]) -> list[dict[str, object]]:
    return [{"Kind": kind, "Path": path} for kind, path in entries]


def test_writes_into_an_existing_directory_ask_for_that_directory() -> None:
    dirs, unresolved = tmpfs_from_changes(changes((0, "/data"), (1, "/data/report.txt")))
    assert (dirs, unresolved) == (["/data"], [])


def test_a_directory_the_workload_created_is_taken_whole() -> None:
    found = changes((0, "/var"), (0, "/var/log"), (1, "/var/log/app"), (1, "/var/log/app/x"), (1, "/var/log/app/y"))
    assert tmpfs_from_changes(found) == (["/var/log/app"], [])


def test_nested_choices_collapse_and_engine_paths_are_ignored() -> None:
    found = changes(
        (0, "/tmp"), (1, "/tmp/a"), (1, "/tmp/cache"), (1, "/tmp/cache/b"), (0, "/etc/hosts"), (1, "/run/secrets/x")
    )
    assert tmpfs_from_changes(found) == (["/tmp"], [])


def test_a_file_written_under_root_cannot_be_covered() -> None:
    assert tmpfs_from_changes(changes((1, "/out.txt"), (1, "/cache"))) == (["/cache"], ["/out.txt"])


def test_capabilities_are_read_from_refusals() -> None:
    logs = "\n".join(
        [
            "starting",
            "chown: /data/report.txt: Operation not permitted",
            "httpd: bind: Permission denied",
            "all fine here",
        ]
    )
    caps, lines = capability_hints(logs)
    assert caps == {"CHOWN", "NET_BIND_SERVICE"}
    assert lines == ["chown: /data/report.txt: Operation not permitted", "httpd: bind: Permission denied"]


def test_no_refusal_no_hint() -> None:
    assert capability_hints("chown done\nlistening") == (set(), [])


def test_limits_double_the_peak_and_keep_floors() -> None:
    stats = {
        "memory_stats": {"usage": 30 * MIB, "max_usage": 50 * MIB},
        "pids_stats": {"current": 20},
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000},
    }
    limits = limits_from_stats(stats)
    assert limits.memory == 128 * MIB  # 100 MiB, rounded up to the next step of 32 MiB
    assert limits.pids == 48
    assert limits.observed == {"memory_peak": 50 * MIB, "pids": 20, "cpus": 0.4}
    assert limits.cpus == 1.0
    floor = limits_from_stats(None)
    assert (floor.memory, floor.pids, floor.cpus) == (32 * MIB, 32, 0.25)


def test_non_root_candidates_prefer_the_image_users() -> None:
    passwd = (
        "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n"
        "app:x:1000:1000::/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    assert non_root_users(passwd) == ["app", "nobody"]
    assert runs_as_root("") and runs_as_root("0:0") and runs_as_root("root") and not runs_as_root("app")


def test_flags_and_host_config_say_the_same() -> None:
    proposal = RunProposal(tmpfs=("/data",), memory=64 * MIB, pids_limit=40, cpus=0.5, user="nobody").with_caps(
        {"NET_BIND_SERVICE", "CHOWN"}
    )
    assert proposal.flags() == [
        "--cap-drop ALL",
        "--cap-add CHOWN",
        "--cap-add NET_BIND_SERVICE",
        "--security-opt no-new-privileges",
        "--read-only",
        "--tmpfs /data:rw,noexec,nosuid,nodev,size=64m",
        "--user nobody",
        "--memory 64m --memory-swap 64m",
        "--pids-limit 40",
        "--cpus 0.5",
        "--cpu-shares 512",
        "--restart on-failure:5",
    ]
    host, config = proposal.apply_to(
        {"SecurityOpt": ["no-new-privileges:false", "label=x"], "CapAdd": ["SYS_ADMIN"]}, {}
    )
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["label=x", "no-new-privileges:true"]
    assert host["Tmpfs"] == {"/data": "noexec,nosuid,nodev,size=64m"}
    assert (host["Memory"], host["PidsLimit"], host["NanoCpus"], host["CpuShares"]) == (64 * MIB, 40, 500_000_000, 512)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert config == {"User": "nobody"}
