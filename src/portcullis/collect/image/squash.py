"""The squashed view: layers applied in order the way the engine applies them, each path remembering its layer.

Whiteouts and opaque directories remove lower-layer paths; a member whose parent is a symlink lands where
the symlink points, resolved inside the image tree only (absolute targets restart at the image root and
'..' stops at it). A secret removed by a later layer stays on record: it is still extractable.
"""

from __future__ import annotations

from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import DIR, FILE, HARDLINK, SYMLINK, Entry, LayerScan
from portcullis.collect.image.waste import WasteLedger, stored_size
from portcullis.model.facts import ImageContentFacts, PathEvidence
from portcullis.model.layers import LayerRef

MAX_SYMLINK_HOPS = 40
NOTABLE_BINARIES = {"sshd": "ssh server", "dropbear": "ssh server", "sudo": "sudo", "doas": "doas"}
BIN_DIRS = frozenset({"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"})
# Package-manager caches: directory prefix and, where only some files count, the suffix they carry.
CACHE_DIRS = (
    ("var/cache/apt/archives/", ".deb"),
    ("var/lib/apt/lists/", ""),
    ("var/cache/apk/", ""),
    ("var/cache/yum/", ""),
    ("var/cache/dnf/", ""),
    ("root/.cache/pip/", ""),
    ("root/.npm/_cacache/", ""),
    ("usr/local/share/.cache/yarn/", ""),
)
CACHE_IGNORED = ("var/lib/apt/lists/lock", "var/lib/apt/lists/partial/")


class SquashedView:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.paths: dict[str, Entry] = {}
        self.removed_secrets: list[tuple[Entry, int]] = []  # the entry, the layer that removed it
        self.unsafe: list[tuple[int, str, str]] = []  # layer, member, why
        self.unread: list[tuple[int, str, str]] = []  # layer, path, why
        # Where each parent directory resolves, valid until a symlink on the way changes: most members share parents.
        self._parents: dict[str, str | None] = {}
        self._consulted: set[str] = set()  # every path those answers looked up
        self.waste = WasteLedger()

    def apply(self, index: int, scan: LayerScan) -> None:
        self.unsafe.extend((index, name, why) for name, why in scan.unsafe)
        self.unread.extend((index, name, why) for name, why in scan.unread)
        waste = self.waste
        waste.start_layer(scan)
        if scan.whiteouts or scan.opaque_dirs:
            self._delete(index, scan)
        for entry in scan.entries:
            placed = self.place(entry.path)
            if placed is None:
                self.unsafe.append((index, "/" + entry.path, "symlink loop in the parent directories"))
                continue
            entry.path, entry.layer = placed, index
            if entry.kind == HARDLINK and not self._link(index, entry):
                continue
            old = self.paths.get(placed)
            if (entry.kind == SYMLINK or (old is not None and old.kind == SYMLINK)) and placed in self._consulted:
                self._forget_parents()
            if old is not None:
                if old.kind == DIR and entry.kind != DIR:
                    self._drop_tree(placed, index, keep_root=True)
                self._forget(old, index)
                waste.replaced(placed, old)
            self.paths[placed] = entry
        waste.end_layer()
        if len(self.paths) > self.limits.max_entries:
            raise ImageError(f"the image holds more than {self.limits.max_entries} paths")

    def place(self, path: str) -> str | None:
        """Where a path written by a layer ends up once its parent directories' symlinks are followed."""
        parent, _, base = path.rpartition("/")
        if not parent:
            return path
        if parent in self._parents:
            resolved = self._parents[parent]
        else:
            resolved = self._parents[parent] = self.resolve(parent)
        if resolved is None:
            return None
        return f"{resolved}/{base}" if resolved else base

    def resolve(self, path: str) -> str | None:
        """Follow every symlink in `path` inside the image tree; None on a loop."""
        done: list[str] = []
        todo = path.split("/")[::-1]
        hops = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            self._consulted.add(candidate)
            entry = self.paths.get(candidate)
            if entry is not None and entry.kind == SYMLINK:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                if entry.link.startswith("/"):
                    done = []
                todo.extend(entry.link.split("/")[::-1])
            else:
                done.append(part)
        return "/".join(done)

    def _link(self, index: int, entry: Entry) -> bool:
        target_path = self.place(entry.link)
        target = self.paths.get(target_path) if target_path is not None else None
        if target is None or target.kind not in (FILE, HARDLINK):
            self.unsafe.append(
                (index, "/" + entry.path, f"hardlink to {entry.link!r}, which is not a file in the image")
            )
            return False
        entry.size, entry.secret = target.size, entry.secret or target.secret
        return True

    def _forget_parents(self) -> None:
        self._parents.clear()
        self._consulted.clear()

    def _delete(self, index: int, scan: LayerScan) -> None:
        self._forget_parents()
        doomed = {p for p in (self.place(w) for w in scan.whiteouts) if p}
        hidden = {p for p in (self.place(d) for d in scan.opaque_dirs) if p is not None}
        dropped: dict[str, int] = {}  # bytes below each deleted directory (dive weighs its deletion by them)
        kinds = {path: self.paths[path].kind for path in doomed if path in self.paths}
        for path in list(self.paths):
            root = path if path in doomed else _ancestor_in(path, doomed)
            if root is not None or _has_ancestor(path, hidden):
                entry = self.paths.pop(path)
                self._forget(entry, index)
                self.waste.removed(entry)
                if root is not None:
                    dropped[root] = dropped.get(root, 0) + stored_size(entry)
        for path, kind in kinds.items():  # a whiteout of a path no lower layer wrote weighs nothing and counts not
            self.waste.deleted(path, index, dropped.get(path, 0) if kind == DIR else 0)

    def _drop_tree(self, root: str, index: int, keep_root: bool) -> None:
        self._forget_parents()
        prefix = root + "/"
        for path in [p for p in self.paths if p.startswith(prefix) or (p == root and not keep_root)]:
            entry = self.paths.pop(path)
            self._forget(entry, index)
            self.waste.removed(entry)

    def _forget(self, entry: Entry, index: int) -> None:
        if entry.secret:
            self.removed_secrets.append((entry, index))


def _has_ancestor(path: str, dirs: set[str]) -> bool:
    if not dirs:
        return False
    if "" in dirs:  # an opaque root hides everything below
        return True
    return _ancestor_in(path, dirs) is not None


def _ancestor_in(path: str, dirs: set[str]) -> str | None:
    """The nearest directory above `path` that is in `dirs`."""
    if not dirs:
        return None
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        if path in dirs:
            return path
        cut = path.rfind("/")
    return None


_CACHE_PREFIXES = tuple(prefix for prefix, _ in CACHE_DIRS)


def _cache_root(path: str) -> str | None:
    if not path.startswith(_CACHE_PREFIXES) or path.startswith(CACHE_IGNORED):
        return None
    for prefix, suffix in CACHE_DIRS:
        if path.startswith(prefix) and path.endswith(suffix):
            return prefix.rstrip("/")
    return None


def _special_bits(mode: int) -> str:
    return "+".join(name for bit, name in ((0o4000, "setuid"), (0o2000, "setgid")) if mode & bit)


def content_facts(view: SquashedView, layers: list[LayerRef], source: str, reference: str) -> ImageContentFacts:
    """The rule-facing summary of a squashed view."""
    facts = ImageContentFacts(
        source=source,
        reference=reference,
        layers=layers,
        file_count=len(view.paths),
        efficiency=view.waste.summary(view.paths, layers),
    )
    caches: dict[tuple[str, int], list[int]] = {}
    for entry in view.paths.values():
        layer = layers[entry.layer]
        where = "/" + entry.path
        if entry.kind in (FILE, HARDLINK):
            if entry.mode & 0o6000:
                facts.setuid_files.append(
                    PathEvidence(path=where, layer=layer, mode=entry.mode, detail=_special_bits(entry.mode))
                )
            if entry.secret:
                facts.secrets.append(PathEvidence(path=where, layer=layer, mode=entry.mode, detail=entry.secret))
            directory, _, name = entry.path.rpartition("/")
            if name in NOTABLE_BINARIES and directory in BIN_DIRS:
                facts.notable_binaries.append(
                    PathEvidence(path=where, layer=layer, mode=entry.mode, detail=NOTABLE_BINARIES[name])
                )
            root = _cache_root(entry.path)
            if root is not None:
                tally = caches.setdefault((root, entry.layer), [0, 0])
                tally[0] += 1
                tally[1] += entry.size
        elif entry.kind == DIR and entry.mode & 0o002 and not entry.mode & 0o1000:
            facts.world_writable_dirs.append(
                PathEvidence(path=where, layer=layer, mode=entry.mode, detail="o+w, no sticky bit")
            )
    for entry, removed_by in view.removed_secrets:
        facts.secrets.append(
            PathEvidence(
                path="/" + entry.path,
                layer=layers[entry.layer],
                mode=entry.mode,
                detail=entry.secret or "",
                removed_in=layers[removed_by],
            )
        )
    for (root, index), (count, size) in caches.items():
        facts.package_caches.append(
            PathEvidence(path="/" + root, layer=layers[index], detail=f"{count} files, {size} bytes")
        )
    if facts.efficiency is not None:
        facts.efficiency.cache_bytes = sum(size for _, size in caches.values())
    for index, name, why in view.unsafe:
        facts.unsafe_entries.append(PathEvidence(path=name, layer=layers[index], detail=why))
    for index, name, why in view.unread:
        facts.unread.append(PathEvidence(path=name, layer=layers[index], detail=why))
    for group in (
        facts.setuid_files,
        facts.world_writable_dirs,
        facts.secrets,
        facts.notable_binaries,
        facts.package_caches,
        facts.unsafe_entries,
        facts.unread,
    ):
        group.sort(key=lambda e: (e.path, e.layer.index))
    return facts
