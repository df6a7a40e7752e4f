"""What cosign signature verification costs: the pure check, one registry lookup, and the audit with a policy.

Against the local test registry (scripts/start-test-registry.sh, 127.0.0.1:5000): busybox is copied into fresh
repositories and signed in cosign's layout (tests/support/cosign_format.py), then

- verify: `judge_lookup` over a fetched lookup with one ECDSA P-256 signature (CPU only), `--verifies` times;
- lookup: `lookup_signatures` for a signed and for an unsigned digest (HTTP to the registry), `--lookups` times;
- audit: `portcullis audit --select CIS-4.12` with and without `--trust-policy`, median of `--runs`, on the
  engine as it is (the images of whatever containers run there are looked up).

    .venv/bin/python benchmarks/signatures_bench.py      # writes benchmarks/results/signatures.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REGISTRY = "127.0.0.1:5000"
sys.path.insert(0, str(ROOT / "tests"))
from portcullis.checks.signatures import Verdict, judge_lookup  # noqa: E402
from portcullis.collect.image.signatures import lookup_signatures  # noqa: E402
from portcullis.model.signatures import TrustedKey  # noqa: E402
from support.cosign_format import SigningKey, TestRegistry, payload  # noqa: E402


def timed_ms(action: Callable[[], object], times: int) -> list[float]:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        action()
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(samples),
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def audit_command(*extra: str) -> list[str]:
    return [str(Path(sys.executable).parent / "portcullis"), "audit", "--select", "CIS-4.12", "--no-store", *extra]


def audit_ms(extra: list[str], runs: int) -> list[float]:
    command = audit_command("-f", "json", "-o", os.devnull, *extra)
    subprocess.run(command, check=True, capture_output=True)  # warm-up
    return timed_ms(lambda: subprocess.run(command, check=True, capture_output=True), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verifies", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    registry = TestRegistry(REGISTRY)
    key = SigningKey.generate()
    keys = [TrustedKey(name="cosign.pub", pem=key.public_pem)]
    signed_repo, unsigned_repo = (f"portcullis-test/sigbench-{uuid.uuid4().hex[:8]}" for _ in range(2))
    digest = registry.copy_image("portcullis-test/busybox", "1", signed_repo)
    registry.copy_image("portcullis-test/busybox", "1", unsigned_repo)
    body = payload(f"{REGISTRY}/{signed_repo}", digest)
    registry.push_signatures(signed_repo, digest, [(body, key.sign(body))])

    fetched = lookup_signatures(f"{REGISTRY}/{signed_repo}", digest, keys, [REGISTRY])
    assert judge_lookup(fetched).verdict is Verdict.SIGNED, judge_lookup(fetched)
    load_before = os.getloadavg()
    verify = timed_ms(lambda: judge_lookup(fetched), args.verifies)
    signed = timed_ms(lambda: lookup_signatures(f"{REGISTRY}/{signed_repo}", digest, keys, [REGISTRY]), args.lookups)
    unsigned = timed_ms(
        lambda: lookup_signatures(f"{REGISTRY}/{unsigned_repo}", digest, keys, [REGISTRY]), args.lookups
    )
    with tempfile.TemporaryDirectory() as scratch:
        key_file = Path(scratch) / "cosign.pub"
        key_file.write_text(key.public_pem)
        without = audit_ms([], args.runs)
        with_policy = audit_ms(["--verify-key", str(key_file)], args.runs)
        looked_up = subprocess.run(
            audit_command("-f", "json", "--verify-key", str(key_file)),
            capture_output=True,
            text=True,
            check=False,
        )
    judged = [f for f in json.loads(looked_up.stdout)["findings"] if f["status"] != "manual"]
    result: dict[str, Any] = {
        "what": "cosign signature verification: pure check, one registry lookup, the audit with and without a policy",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "registry": f"{REGISTRY} (Debian docker-registry, loopback, plain HTTP)",
        "verify_one_ecdsa_p256_signature": summary(verify),
        "lookup_signed_digest": summary(signed),
        "lookup_unsigned_digest": summary(unsigned),
        "audit_without_policy": summary(without),
        "audit_with_policy": summary(with_policy),
        "audit_images_judged_under_policy": len(judged),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "signatures.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
