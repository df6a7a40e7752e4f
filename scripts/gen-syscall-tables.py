"""Regenerate src/portcullis/harden/syscall_tables.json from the kernel UAPI headers (Debian's linux-libc-dev).

The JSON is only the fallback for machines without those headers; run this after a linux-libc-dev upgrade.
Usage: python scripts/gen-syscall-tables.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from portcullis.harden.syscalls import FALLBACK_TABLES, parse_headers

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "portcullis" / "harden" / FALLBACK_TABLES


def main() -> None:
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "linux-libc-dev"], capture_output=True, text=True, check=True
    ).stdout
    tables = {}
    for arch in ("x86_64", "aarch64"):
        table = parse_headers(arch)
        if not table:
            raise SystemExit(f"the {arch} syscall header is missing: apt-get install linux-libc-dev")
        tables[arch] = {str(number): name for number, name in sorted(table.items())}
    document = {"generated_by": "scripts/gen-syscall-tables.py", "linux_libc_dev": version, "tables": tables}
    OUTPUT.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({', '.join(f'{a}: {len(t)} syscalls' for a, t in tables.items())})")


if __name__ == "__main__":
    main()
