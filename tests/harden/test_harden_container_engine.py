"""`portcullis harden container` on real workloads: proposals found by trial, verified, and still working.

Each workload runs as an ordinary labelled container; harden observes labelled copies of it. The test then
starts its own container with the proposed flags and checks the workload itself: an HTTP answer from the web
server, exit 0 and the expected output from the batch jobs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import LABEL, Workloads, container_ip, docker, flag_words, harden, http_get, image_of

pytestmark = pytest.mark.engine

SMOKE = "wget -q -O- http://127.0.0.1:8080/"
TARGETED = ("CIS-5.4", "CIS-5.11", "CIS-5.12", "CIS-5.13", "CIS-5.26", "CIS-5.29")


def rule_statuses(document: dict) -> dict[str, tuple[str, str]]:
    return {r["rule_id"]: (r["before"], r["after"]) for r in document["verification"]["rules"]}


def assert_targets_fixed(document: dict, keeps_capabilities: bool = False) -> None:
    statuses = rule_statuses(document)
    for rule_id in TARGETED:
        if rule_id == "CIS-5.4" and keeps_capabilities:
            continue
        assert statuses[rule_id] == ("fail", "pass"), (rule_id, statuses[rule_id])
    assert statuses["CIS-5.15"][1] == "pass"


def test_web_server_runs_unprivileged_read_only(workloads: Workloads) -> None:
    web = workloads.run("web", "web", "-p", "127.0.0.1::8080")
    code, document, stderr = harden("container", web, "--smoke", SMOKE, "--observe", "3")
    assert code == 0, stderr
    proposal = document["proposal"]
    assert document["mode"] == "service" and document["verified"] is True
    assert proposal["user"] == "nobody"  # the image's non-root user is enough: no capability at all
    assert proposal["cap_add"] == []
    assert proposal["read_only"] is True and proposal["tmpfs"] == ["/tmp/cache"]
    assert_targets_fixed(document)
    verification = document["verification"]
    assert verification["section5_failed_after"] < verification["section5_failed_before"]
    assert not workloads.leftovers(), "harden left experiment containers behind"

    hardened = workloads.name("web-hardened")
    workloads.names.append(hardened)
    docker("run", "-d", "--label", LABEL, "--name", hardened, *flag_words(proposal["flags"]), image_of("web"))
    assert http_get(f"http://{container_ip(hardened)}:8080/") == "hello from portcullis\n"
    inspect = docker("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", hardened).stdout.split()
    assert inspect == ["true", "nobody"]


def test_batch_job_keeps_only_chown(workloads: Workloads) -> None:
    job = workloads.run("batch", "batch")
    assert workloads.wait_exit(job) == 0
    code, document, stderr = harden("container", job)
    assert code == 0, stderr
    proposal = document["proposal"]
    assert document["mode"] == "batch" and document["verified"] is True
    assert proposal["cap_add"] == ["CHOWN"]  # named by the EPERM line of the no-capability trial
    assert proposal["user"] is None  # chown to another uid cannot work as nobody
    assert proposal["tmpfs"] == ["/data"]
    labels = [t["trial"] for t in document["trials"]]
    assert "capabilities from EPERM lines: CHOWN" in labels
    assert_targets_fixed(document, keeps_capabilities=True)
    # CIS-5.4 flags every added capability: it still fails, now naming only the one the job needs.
    capability_rule = next(r for r in document["verification"]["rules"] if r["rule_id"] == "CIS-5.4")
    assert capability_rule["after"] == "fail"
    assert capability_rule["after_message"] == "capabilities added: CHOWN"

    rerun = workloads.name("batch-hardened")
    workloads.names.append(rerun)
    docker("run", "--label", LABEL, "--name", rerun, *flag_words(proposal["flags"]), image_of("batch"))
    assert workloads.wait_exit(rerun) == 0
    assert docker("logs", rerun).stdout == "done\n"


def test_a_silent_need_is_found_by_bisection(workloads: Workloads) -> None:
    job = workloads.run("dac", "needs-dac")
    assert workloads.wait_exit(job) == 0
    code, document, stderr = harden("container", job)
    assert code == 0, stderr
    assert document["proposal"]["cap_add"] == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    labels = [t["trial"] for t in document["trials"]]
    # chown and chmod say what they lacked; the refused read of a mode-600 file does not.
    assert "capabilities from EPERM lines: CHOWN" in labels
    assert "capabilities from EPERM lines: CHOWN, FOWNER" in labels
    assert any(label.startswith("bisect") for label in labels)
    assert len(document["trials"]) <= 16 + 1


def test_a_workload_that_cannot_work_read_only_is_reported_not_loosened(workloads: Workloads) -> None:
    job = workloads.run("conf", "broken-by-readonly")
    assert workloads.wait_exit(job) == 0
    code, document, stderr = harden("container", job)
    assert code == 2, stderr
    assert document["verified"] is False and document["verification"] is None
    assert document["proposal"]["read_only"] is True  # the proposal stays strict
    needed = document["needed"]
    assert "changed /conf/app.conf" in needed["paths_written"]
    assert needed["failure"] == "the default capabilities plus the container's: exited 2"  # grep: no such file
    assert needed["image_files_under_tmpfs"] == ["/conf/app.conf"]
    assert not workloads.leftovers()


def test_compose_service_gets_an_override_with_comments_kept(workloads: Workloads, tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: portcullis-test/harden-web:1\n    cap_add: [NET_ADMIN]\n")
    override = tmp_path / "compose.override.yaml"
    override.write_text("# ours: keep\nservices:\n  web:\n    environment:\n      A: '1'  # why A\n")
    # The labels docker compose puts on a service container are all harden looks at.
    workloads.run(
        "compose-web",
        "web",
        "--label",
        "com.docker.compose.service=web",
        "--label",
        f"com.docker.compose.project.config_files={compose}",
    )
    code, document, stderr = harden(
        "container",
        "--compose",
        str(compose),
        "--service",
        "web",
        "--smoke",
        SMOKE,
        "--observe",
        "2",
        "--override-out",
        str(override),
    )
    assert code == 0, stderr
    text = override.read_text()
    assert text == document["compose_override"]
    assert "# ours: keep" in text and "A: '1'  # why A" in text
    assert "cap_add: !override []" in text  # the base file's NET_ADMIN must not survive the merge
    assert "read_only: true" in text and "user: nobody" in text


def test_apply_recreates_the_container_under_the_same_name(workloads: Workloads) -> None:
    web = workloads.run("apply-web", "web")
    old_id = docker("inspect", "-f", "{{.Id}}", web).stdout.strip()
    code, document, stderr = harden("container", web, "--smoke", SMOKE, "--observe", "2", "--apply")
    assert code == 0, stderr
    new_id = docker("inspect", "-f", "{{.Id}}", web).stdout.strip()
    assert new_id == document["applied"] and new_id != old_id
    state = docker("inspect", "-f", "{{.State.Running}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", web)
    assert state.stdout.split() == ["true", "true", "nobody"]
    assert docker("inspect", old_id, check=False).returncode != 0, "the old container was kept"
    assert http_get(f"http://{container_ip(web)}:8080/") == "hello from portcullis\n"
    assert not workloads.leftovers()


def test_bad_input_is_one_line(workloads: Workloads) -> None:
    code, document, stderr = harden("container", "pc-hd-no-such-container")
    assert (code, document) == (1, {})
    assert stderr.strip() == "portcullis: error: no container named 'pc-hd-no-such-container'"
    code, _, stderr = harden("container", "x", "--compose", "c.yaml")
    assert code == 1 and stderr.strip() == "portcullis: error: --compose and --service go together"
