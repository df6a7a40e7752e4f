"""Wasted bytes across layers, counted as dive counts them, while the squashed view applies the layers.

dive's measure: every layer's write of a path is one copy (a directory only when the layer wrote nothing below it;
directories, links and deletions weigh 0 bytes, except a deletion that hides a directory, which weighs the tree it
hid). A path with two or more copies wastes all of them; the efficiency is the sum of each path's smallest copy
over the sum of all copies.

Most paths are written once, so the ledger keeps a path's history only once a second layer touches it: the
squashed view's current entry stands for the latest copy, and `earlier` holds the copies before it (or all of them
for a path deleted and not written again). Paths are the view's resolved paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.collect.image.layer import DIR, FILE, Entry, LayerScan
from portcullis.model.facts import ImageEfficiency, LayerWaste, PathCopy, WastedPath
from portcullis.model.layers import LayerRef

TOP_PATHS = 20


@dataclass(frozen=True, slots=True)
class Copy:
    layer: int
    size: int
    deleted: bool = False


def stored_size(entry: Entry) -> int:
    """What a layer stores for the entry: a hardlink's target is elsewhere, so only regular files weigh."""
    return entry.size if entry.kind == FILE else 0


class WasteLedger:
    def __init__(self) -> None:
        self.counted = 0  # bytes of every copy
        self.hidden = 0  # bytes of copies the final image no longer shows
        self.earlier: dict[str, list[Copy]] = {}
        self.leaf_dirs: set[str] = set()  # paths whose current entry is a directory its layer wrote nothing below
        self._new_leaf_dirs: list[Entry] = []  # the directories the layer being applied wrote nothing below

    def start_layer(self, scan: LayerScan) -> None:
        """Count the layer's copies: its files' bytes, and which of its directories are copies of their own (those
        it wrote nothing below, not even a whiteout). Runs before the layer's paths are resolved."""
        above = {path.rpartition("/")[0] for path in (*(e.path for e in scan.entries), *scan.whiteouts)}
        for parent in list(above):  # the implicit ancestors: a layer need not write every directory on the way
            parent = parent.rpartition("/")[0]
            while parent and parent not in above:
                above.add(parent)
                parent = parent.rpartition("/")[0]
        self.counted += sum(e.size for e in scan.entries if e.kind == FILE)
        self._new_leaf_dirs = [e for e in scan.entries if e.kind == DIR and e.path not in above]

    def replaced(self, path: str, old: Entry) -> None:
        """The layer being applied writes `path`, where `old` was."""
        self.hidden += stored_size(old)
        if old.kind != DIR or path in self.leaf_dirs:
            self.earlier.setdefault(path, []).append(Copy(old.layer, stored_size(old)))
            self.leaf_dirs.discard(path)

    def end_layer(self) -> None:
        """The layer is applied: its leaf directories, now at their resolved paths, are copies."""
        self.leaf_dirs.update(e.path for e in self._new_leaf_dirs)
        self._new_leaf_dirs = []

    def removed(self, entry: Entry) -> None:
        """A deletion (or a directory turned into a file) dropped `entry` from the view."""
        self.hidden += stored_size(entry)
        if entry.kind != DIR or entry.path in self.leaf_dirs:
            self.earlier.setdefault(entry.path, []).append(Copy(entry.layer, stored_size(entry)))
            self.leaf_dirs.discard(entry.path)

    def deleted(self, path: str, layer: int, hidden: int) -> None:
        """A whiteout in `layer` deleted `path`, hiding `hidden` bytes (a directory's tree; 0 for anything else)."""
        self.earlier.setdefault(path, []).append(Copy(layer, hidden, deleted=True))
        self.counted += hidden

    def summary(self, current: dict[str, Entry], layers: list[LayerRef]) -> ImageEfficiency:
        """The measure over the view's final `current` entries."""
        wasted: list[tuple[str, list[Copy]]] = []
        for path, copies in self.earlier.items():
            entry = current.get(path)
            if entry is not None and (entry.kind != DIR or path in self.leaf_dirs):
                copies = [*copies, Copy(entry.layer, stored_size(entry))]
            if len(copies) > 1:
                wasted.append((path, copies))
        total = sum(sum(c.size for c in copies) for _, copies in wasted)
        surplus = sum(sum(c.size for c in copies) - min(c.size for c in copies) for _, copies in wasted)
        per_layer: dict[int, list[int]] = {}
        for _, copies in wasted:
            for copy in copies:
                tally = per_layer.setdefault(copy.layer, [0, 0])
                tally[0] += copy.size
                tally[1] += 1
        wasted.sort(key=lambda item: (-sum(c.size for c in item[1]), item[0]))
        return ImageEfficiency(
            efficiency=(self.counted - surplus) / self.counted if self.counted else 1.0,
            wasted_bytes=total,
            counted_bytes=self.counted,
            hidden_bytes=self.hidden,
            wasted_paths=len(wasted),
            top=[
                WastedPath(
                    path="/" + path,
                    bytes=sum(c.size for c in copies),
                    copies=[PathCopy(layer=layers[c.layer], bytes=c.size, deleted=c.deleted) for c in copies],
                )
                for path, copies in wasted[:TOP_PATHS]
            ],
            by_layer=[
                LayerWaste(layer=layers[index], bytes=size, paths=count)
                for index, (size, count) in sorted(per_layer.items(), key=lambda item: (-item[1][0], item[0]))
            ],
        )
