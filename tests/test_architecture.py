"""The shape of ``src/`` (issue 30), read from the source with the standard library's ``ast``:

- no import cycle among its modules (every ``import`` counts, also those inside functions);
- no module imports an entry point (a ``python -m src.X`` module: it has an ``if __name__ ==
  "__main__":`` guard or is a ``__main__.py``); only the tests import them;
- entry points are thin (at most ENTRY_MAX_LINES lines) and no file is over LIBRARY_MAX_LINES.
"""

from __future__ import annotations

import ast
from pathlib import Path

from src.utils.config import PROJECT_ROOT

ENTRY_MAX_LINES = 200
LIBRARY_MAX_LINES = 450


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (the folder of ``package``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def is_entry_point(name: str, tree: ast.Module) -> bool:
    if name.endswith(".__main__"):
        return True
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            left = node.test.left
            if isinstance(left, ast.Name) and left.id == "__name__":
                return True
    return False


def import_graph(root: Path, package: str) -> tuple[dict[str, set[str]], set[str]]:
    """(module -> the modules of ``package`` it imports, the entry points). ``from a.b import c``
    is an edge to ``a.b.c`` when that is a module, else to ``a.b``; relative imports resolved."""
    modules = modules_of(root, package)

    def resolve(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    edges: dict[str, set[str]] = {name: set() for name in modules}
    entries = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if is_entry_point(name, tree):
            entries.add(name)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join([*here, base] if base else here)
                targets = [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != name:
                    edges[name].add(resolved)
    return edges, entries


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward_imports(edges: dict[str, set[str]], entries: set[str]) -> list[str]:
    return [
        f"{a} imports the entry point {b}" for a in sorted(edges) for b in sorted(edges[a]) if b in entries
    ]


SRC = PROJECT_ROOT / "src"


def test_src_has_no_import_cycle():
    edges, _ = import_graph(SRC, "src")
    assert len(edges) > 100  # the whole tree was read
    assert cycles(edges) == []


def test_no_module_imports_an_entry_point():
    edges, entries = import_graph(SRC, "src")
    assert {"src.train", "src.eval", "src.restore", "src.demo", "src.report"} <= entries
    assert upward_imports(edges, entries) == []


def test_entry_points_are_thin_and_files_are_short():
    edges, entries = import_graph(SRC, "src")
    modules = modules_of(SRC, "src")
    too_long = []
    for name, path in modules.items():
        count = len(path.read_text(encoding="utf-8").splitlines())
        limit = ENTRY_MAX_LINES if name in entries else LIBRARY_MAX_LINES
        if count > limit:
            too_long.append(f"{path.relative_to(PROJECT_ROOT)}: {count} lines (> {limit})")
    assert too_long == []


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checks_find_a_cycle_and_an_upward_import(tmp_path):
    """The checker itself: a cycle through a function-level and a relative import, and a library
    module importing a command line, are reported; a clean one-way import is not."""
    root = tmp_path / "pkg"
    write(root, "__init__.py", "")
    write(root, "lib/__init__.py", "")
    write(root, "lib/a.py", "def f():\n    from pkg.lib.b import g\n")
    write(root, "lib/b.py", "from . import a\n")
    write(root, "lib/c.py", "import pkg.lib.a\n")
    write(root, "tool.py", "from pkg.lib import c\nif __name__ == '__main__':\n    pass\n")
    write(root, "helper.py", "from pkg.tool import main\n")
    write(root, "cmd/__main__.py", "from pkg.lib.c import x\n")
    edges, entries = import_graph(root, "pkg")
    assert entries == {"pkg.tool", "pkg.cmd.__main__"}
    assert cycles(edges) == [["pkg.lib.a", "pkg.lib.b"]]
    assert upward_imports(edges, entries) == ["pkg.helper imports the entry point pkg.tool"]
    assert edges["pkg.tool"] == {"pkg.lib.c"}
