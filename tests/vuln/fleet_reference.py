"""Child of test_vuln_match_scale.py: each image's vulnerability findings in a fresh process, with the process's
scanner dropped before every image, so no image is judged from another's memo.

    fleet_reference.py DB FACTS.json... > findings.json   (one list of finding dumps per image, in argument order)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from portcullis.model.facts import ImageFacts
from portcullis.pipelines.vulnerabilities import VulnOptions, check_database, vulnerability_findings
from portcullis.vuln.scanner import forget_shared


def main(db: str, *facts: str) -> None:
    options = VulnOptions(db_path=Path(db), max_age_days=0)
    checked = check_database(options)
    out = []
    for path in facts:
        forget_shared()
        image = ImageFacts.model_validate_json(Path(path).read_text(encoding="utf-8"))
        out.append([f.model_dump(mode="json") for f in vulnerability_findings(image, options, checked).findings])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:])
