"""Build `portcullis-inside.pyz`: the inside self-assessment as one file users `docker cp` into a container.

Only standard-library modules go in, so any python3 ≥ 3.8 in the container runs it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# The zipapp is the root package's __init__ (the version) and the whole `inside` package; a test checks
# statically that none of these modules imports anything beyond the standard library and each other.
MEMBERS = ("__init__.py", *sorted(f"inside/{p.name}" for p in (PACKAGE_ROOT / "inside").glob("*.py")))


def build(target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="portcullis-pyz-") as staging:
        base = Path(staging)
        for member in MEMBERS:
            destination = base / "portcullis" / member
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PACKAGE_ROOT / member, destination)
        (base / "__main__.py").write_text(
            "import sys\nfrom portcullis.inside.main import main\nsys.exit(main())\n", encoding="utf-8"
        )
        zipapp.create_archive(base, target, interpreter="/usr/bin/env python3", compressed=True)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "portcullis-inside.pyz")))
