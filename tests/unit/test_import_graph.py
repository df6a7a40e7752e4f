"""What the import contracts in .importlinter cannot say: no module imports itself back through others.

Function-level imports count too: a late import that closes a circle still ties the modules together.
"""

from __future__ import annotations

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph: the groups of modules that import each other in a circle."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith("portcullis"):
                continue
            if imported not in index:
                visit(imported)
                lowlink[module] = min(lowlink[module], lowlink[imported])
            elif imported in on_stack:
                lowlink[module] = min(lowlink[module], index[imported])
        if lowlink[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module.startswith("portcullis") and module not in index:
            visit(module)
    return groups


def test_no_import_circles() -> None:
    graph = grimp.build_graph("portcullis", cache_dir=None)
    circles = strongly_connected(graph)
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for module in ("portcullis.a", "portcullis.b", "portcullis.c", "portcullis.d"):
        graph.add_module(module)
    graph.add_import(importer="portcullis.a", imported="portcullis.b")
    graph.add_import(importer="portcullis.b", imported="portcullis.c")
    graph.add_import(importer="portcullis.c", imported="portcullis.a")
    graph.add_import(importer="portcullis.c", imported="portcullis.d")
    assert strongly_connected(graph) == [["portcullis.a", "portcullis.b", "portcullis.c"]]
