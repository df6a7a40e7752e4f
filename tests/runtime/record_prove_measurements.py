"""Re-record the DKR-PRV rule fixtures from real experiments on the engine.

Each "held" measurement comes from an experiment run with the setting in force; each "broken" one
from the same experiment run without it (what a runtime that ignored the setting would show).
Run: .venv/bin/python -m tests.runtime.record_prove_measurements   (writes tests/rules/DKR-PRV-*/)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from portcullis.checks.prove_judges import PROVE_RULES
from portcullis.collect.engine import connect
from portcullis.collect.sandbox import sandbox
from portcullis.proofs.prove import Policy, ProofImages, run_proofs

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
ENFORCED = Policy(source="recording", memory=64 << 20, pids_limit=40, cpus=0.5, read_only=True, cap_drop=["ALL"],
                  no_new_privileges=True)  # fmt: skip


def _host_uid(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def record() -> dict[str, dict[str, Any]]:
    images = ProofImages()
    conn = connect()
    with sandbox(conn, "record") as box:
        held = run_proofs(box, ENFORCED, images, 2, _host_uid)
        broken: dict[str, Any] = {}
        # The same experiments with the setting left out of the container.
        memory = box.run(images.busybox, ["sh", "-c", 'a=$(head -c 100000000 /dev/zero | tr "\\0" x); echo survived'])
        broken["DKR-PRV-001"] = {"limit": 64 << 20, "allocated": 100000000, "run": _record(memory)}
        pids = box.run(images.busybox, ["sh", "-c", 'sh -c "for i in \\$(seq 1 90); do sleep 5 & done" 2>/dev/null; '
                                        "set -- /proc/[0-9]*; echo PROCS $#"])  # fmt: skip
        broken["DKR-PRV-002"] = {"limit": 40, "attempted": 90, "run": _record(pids)}
        write = box.run(images.busybox, ["sh", "-c", "echo x > /portcullis-probe 2>&1 && echo WROTE"])
        broken["DKR-PRV-004"] = {"run": _record(write)}
        caps = box.run(images.busybox, ["sh", "-c", "(touch /tmp/p && chown 1000 /tmp/p) >/dev/null 2>&1 && echo OK"])
        broken["DKR-PRV-005"] = {"operation_succeeded": {"CHOWN": "OK" in caps.output}}
    conn.close()
    return {"held": held, "broken": broken}


def _record(run: Any) -> dict[str, Any]:
    return {"exit_code": run.exit_code, "output": run.output[-2000:], "oom_killed": run.oom_killed,
            "timed_out": run.timed_out}  # fmt: skip


def main() -> None:
    recorded = record()
    for rule_id in PROVE_RULES:
        folder = RULES_DIR / rule_id
        folder.mkdir(exist_ok=True)
        held = recorded["held"][rule_id]
        if "absent" not in held and "error" not in held:
            _write(folder / "pass-recorded.json", "recorded with the setting in force", held, "pass")
        if rule_id in recorded["broken"]:
            _write(folder / "fail-recorded.json", "recorded with the setting left out", recorded["broken"][rule_id],
                   "fail")  # fmt: skip


def _write(path: Path, about: str, measurement: dict[str, Any], status: str) -> None:
    spec = {"about": about, "measurement": measurement, "expect": {"status": status}}
    path.write_text(json.dumps(spec, indent=1) + "\n")


if __name__ == "__main__":
    main()
