"""Portcullis's host rules (DKR-HOST-*) against Lynis on this machine: verdicts per Lynis finding, and time.

Runs `lynis audit system --quick --no-colors` (read-only; its report and log go to a scratch directory) and
`portcullis audit --select DKR-HOST -f json`, then writes benchmarks/results/lynis-compare.md: for each Lynis
warning, suggestion and kernel-setting comparison that bears on a container host, our rule and both verdicts, or why
we have none. Run as root (Lynis reads files only root may).

    .venv/bin/python benchmarks/host_vs_lynis.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "lynis-compare.md"
SYSCTL_LINE = re.compile(r"- ([a-z0-9_.-]+) \(exp: ([^)]*)\)\S*\s*\[ (OK|DIFFERENT) \]")
# Why a kernel setting's verdict can differ from Lynis' (its wanted value is stricter, or we judge a group together).
WHY_DIFFERENT = {
    "fs.protected_hardlinks": "one rule judges all four fs.protected_* settings",
    "fs.protected_symlinks": "one rule judges all four fs.protected_* settings",
    "fs.protected_fifos": "one rule judges all four fs.protected_* settings",
    "fs.protected_regular": "one rule judges all four fs.protected_* settings",
    "kernel.perf_event_paranoid": "Lynis wants 3, a value only Debian-patched kernels know; 2 already keeps "
    "unprivileged users from kernel profiling",
    "kernel.unprivileged_bpf_disabled": "Lynis wants exactly 1; 2 blocks unprivileged BPF as well (and cannot be "
    "undone at run time)",
}
# Lynis kernel settings and the rule that judges the same setting; the rest are network-stack tuning (below).
SYSCTL_RULES = {
    "kernel.kptr_restrict": "DKR-HOST-001",
    "kernel.dmesg_restrict": "DKR-HOST-002",
    "kernel.unprivileged_bpf_disabled": "DKR-HOST-003",
    "kernel.yama.ptrace_scope": "DKR-HOST-004",
    "fs.protected_fifos": "DKR-HOST-006",
    "fs.protected_hardlinks": "DKR-HOST-006",
    "fs.protected_regular": "DKR-HOST-006",
    "fs.protected_symlinks": "DKR-HOST-006",
    "kernel.perf_event_paranoid": "DKR-HOST-007",
    "kernel.modules_disabled": "DKR-HOST-008",
    "fs.suid_dumpable": "DKR-HOST-009",
    "kernel.randomize_va_space": "DKR-HOST-010",
    "net.core.bpf_jit_harden": "DKR-HOST-011",
}
# Lynis tests (warnings and suggestions) that bear on a container host: our rule, or why we have none.
TESTS = {
    "ACCT-9628": ("DKR-HOST-016", ""),
    "HRDN-7222": ("DKR-HOST-014", ""),
    "TIME-3104": (
        "DKR-HOST-015",
        "Lynis 3.0.8 in --quick mode emits no suggestion when no time daemon runs "
        "(its NTP tests find nothing to check); we fail: no chronyd/ntpd/timesyncd process",
    ),
    "MACF-6208": ("DKR-HOST-012", ""),
    "KRNL-6000": ("DKR-HOST-001..011", "per setting below"),
    "FIRE-4512": (
        "",
        "iptables rules are the engine's business (CIS-2.3 judges --iptables); this VM runs dockerd "
        "with --iptables=false by design",
    ),
    "FILE-6310": (
        "CIS-1.1.1",
        "/var, /tmp, /home partitions: for a container host what counts is Docker's data root, which CIS-1.1.1 judges",
    ),
    "PKGS-7392": (
        "",
        "vulnerable host packages: issue 17 section 3 (engine and kernel exposure) covers the engine "
        "components; the general OS package state is not a container-host rule",
    ),
    "KRNL-5820": ("DKR-HOST-009", "core dumps: we judge the kernel side (fs.suid_dumpable), not limits.conf"),
    "NETW-3200": (
        "",
        "uncommon network protocols (dccp, sctp, rds, tipc) load as modules: DKR-HOST-008 judges "
        "module loading as a whole; this kernel has no module support, Lynis checks modprobe blacklists",
    ),
    "LOGG-2130": ("", "syslog daemon: container logs go through the engine's log driver (CIS-2.13); not a host rule"),
    "LOGG-2138": ("", "klogd: kernel logging transport, general host administration"),
    "FINT-4350": ("", "file integrity tool: general hardening; CIS-1.1.x audit rules watch Docker's own files"),
    "HRDN-7230": ("", "malware scanner: general hardening, not specific to a container host"),
}
GENERAL = "general host administration (accounts, PAM, banners, package tooling), not specific to a container host"


def run_lynis(scratch: Path) -> tuple[float, str, dict[str, list[str]]]:
    report = scratch / "report.dat"
    started = time.perf_counter()
    result = subprocess.run(
        [
            "lynis",
            "audit",
            "system",
            "--quick",
            "--no-colors",
            "--report-file",
            str(report),
            "--log-file",
            str(scratch / "lynis.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    found: dict[str, list[str]] = {}
    for line in report.read_text().splitlines():
        kind, _, rest = line.partition("[]=")
        if kind in ("warning", "suggestion"):
            test, text = rest.split("|")[:2]
            found.setdefault(test, []).append(f"{kind}: {text}")
    return elapsed, result.stdout, found


def run_portcullis() -> tuple[float, dict[str, tuple[str, str]]]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "--select", "DKR-HOST", "--format", "json", "--no-store"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    report = json.loads(result.stdout)
    verdicts = {f["rule_id"]: (f["status"], f["message"]) for f in report["findings"]}
    return elapsed, verdicts


def collect_cost() -> float:
    code = (
        "import time;from portcullis.collect.hardening import collect_hardening as c;t=time.perf_counter();c();"
        "print(time.perf_counter()-t)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(result.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pc-lynis-") as scratch:
        lynis_time, stdout, lynis = run_lynis(Path(scratch))
    ours_time, ours = run_portcullis()
    collect_time = collect_cost()
    lines = [
        "# Host hardening: Portcullis DKR-HOST rules vs Lynis",
        "",
        "Written by `benchmarks/host_vs_lynis.py` on this machine (Lynis 3.0.8 from Debian, `lynis audit system "
        "--quick --no-colors`; `portcullis audit --select DKR-HOST`).",
        "",
        "## Time",
        "",
        f"- Lynis: {lynis_time:.1f} s",
        f"- `portcullis audit --select DKR-HOST` (whole CLI: start-up, engine and host facts): {ours_time:.2f} s",
        "- collecting the host-hardening facts alone (what the DKR-HOST rules add to an audit): "
        f"{collect_time * 1000:.0f} ms",
        "",
        "## Lynis findings that bear on a container host",
        "",
        "| Lynis test | Lynis says | our rule | our verdict | note |",
        "|---|---|---|---|---|",
    ]
    for test, (rule_id, note) in TESTS.items():
        said = "; ".join(lynis.get(test, [])) or "(nothing: test passed or not run)"
        verdict = ours.get(rule_id, ("", ""))[0] if rule_id.startswith("DKR-HOST-0") and ".." not in rule_id else ""
        lines.append(f"| {test} | {said} | {rule_id or '-'} | {verdict or '-'} | {note} |")
    lines += [
        "",
        "## Kernel settings (Lynis KRNL-6000 against its default profile)",
        "",
        "| setting | Lynis expects | Lynis | our rule | our verdict | note |",
        "|---|---|---|---|---|---|",
    ]
    for key, expected, state in SYSCTL_LINE.findall(stdout):
        judged_by = SYSCTL_RULES.get(key)
        if judged_by is None:
            note = (
                "network-stack tuning (routing, redirects, martians, tty line disciplines); not a container-host rule"
            )
            lines.append(f"| {key} | {expected} | {state} | - | - | {note} |")
            continue
        rule_id = judged_by
        status, message = ours.get(rule_id, ("", ""))
        agree = (state == "OK") == (status == "pass")
        note = "same verdict" if agree else f"differs: {WHY_DIFFERENT.get(key, 'see the rule')} ({message})"
        lines.append(f"| {key} | {expected} | {state} | {rule_id} | {status} | {note} |")
    others = sorted(set(lynis) - set(TESTS))
    lines += [
        "",
        f"## Lynis findings without a container-host bearing ({len(others)})",
        "",
        f"{', '.join(others)}: {GENERAL}.",
        "",
        "## Our rules Lynis has no counterpart for",
        "",
        "- DKR-HOST-005 (unprivileged user namespaces), DKR-HOST-013 (other network services: a dedicated host); "
        "Lynis lists open ports but does not judge them.",
        "",
        "## All DKR-HOST verdicts on this machine",
        "",
    ]
    lines += [f"- {rule_id}: {status} - {message}" for rule_id, (status, message) in sorted(ours.items())]
    OUT.write_text("\n".join(lines) + "\n")
    print(
        f"wrote {OUT}: Lynis {lynis_time:.1f} s, portcullis {ours_time:.2f} s, host facts {collect_time * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
