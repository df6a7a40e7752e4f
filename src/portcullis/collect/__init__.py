"""All I/O lives here: facts from the engine, the host's files and /proc, and images."""


class CollectionError(Exception):
    """A fact source cannot be used at all (engine unreachable, corrupt snapshot…): one clear line."""
