"""All I/O lives here: facts from the engine, the host's files and /proc, and images."""

from pydantic import ValidationError


class CollectionError(Exception):
    """A fact source cannot be used at all (engine unreachable, corrupt snapshot…): one clear line."""


def first_problem(exc: ValidationError) -> str:
    """A validation failure as one line: where the first wrong value is and what was wrong with it
    (pydantic's own text is a many-line dump that echoes the input)."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return str(exc).splitlines()[0]
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"
