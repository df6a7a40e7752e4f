"""Measurements an audit report carries beside its findings: a `portcullis neighbours` matrix measured on this
host, read back from its JSON (`audit --neighbours FILE`) so the HTML report shows its heat map and claims."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from portcullis.model.neighbours import NeighboursReport
from portcullis.pipelines.errors import UsageError
from portcullis.pipelines.files import read_bounded_text

# A full matrix (2 runtimes x 2 limit modes x 5 x 5 cells, 50 repetitions each) is well under 1 MiB of JSON.
MAX_NEIGHBOURS_BYTES = 16 * 1024 * 1024


def load_neighbours(path: Path) -> NeighboursReport:
    """The matrix `portcullis neighbours --format json` wrote; anything else is one UsageError line."""
    text = read_bounded_text(path, MAX_NEIGHBOURS_BYTES, "neighbours report")
    try:
        return NeighboursReport.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise UsageError(f"neighbours report {path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise UsageError(f"neighbours report {path} is nested too deeply to be a neighbours report") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the document"
        raise UsageError(
            f"neighbours report {path} is not what `portcullis neighbours --format json` writes: {where}: "
            f"{problem['msg']}"
        ) from None
