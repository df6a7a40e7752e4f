"""Rule documentation from the rule declarations: `python -m portcullis.cli.docs docs/rules` (`make docs`).

The pages are written by `portcullis.report.docs`; this entry point hands it the catalogue, which a renderer
must not import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portcullis.checks.registry import all_rules
from portcullis.report.docs import generate

DEFAULT_FIXTURES = Path("tests/rules")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portcullis.cli.docs", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="where the pages go (docs/rules)")
    parser.add_argument(
        "--fixtures", type=Path, default=DEFAULT_FIXTURES, help="the rule fixtures to list as examples (tests/rules)"
    )
    args = parser.parse_args(argv)
    fixtures: Path | None = args.fixtures
    if fixtures is not None and not fixtures.is_dir():
        print(f"portcullis docs: warning: no fixtures directory {fixtures}; pages list no examples", file=sys.stderr)
        fixtures = None
    try:
        written = generate(args.out_dir, [item.info() for item in all_rules()], fixtures)
    except OSError as exc:
        print(f"portcullis docs: error: cannot write {args.out_dir}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} pages to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
