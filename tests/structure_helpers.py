"""The package's import graph, read from the sources (every ``import`` statement
anywhere in a module, inside functions and ``if TYPE_CHECKING:`` blocks too), not from
what Python happened to import, so that an import hidden in a function cannot hide a
cycle; and the size of each module."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import dumpcodec

SRC = Path(dumpcodec.__file__).parent


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def extension_modules() -> Set[str]:
    # built extensions (``_fastcopy.cpython-311-x86_64-linux-gnu.so``) import nothing
    # of ours, but ``from . import _fastcopy`` names them, not their package
    return {module_name(p.with_name(p.name.split(".")[0] + ".py"))
            for p in SRC.rglob("*") if p.suffix in (".so", ".pyd")}


def imports_of(name: str, path: Path, known: Set[str]) -> Set[str]:
    """Every module ``name`` imports, wherever the statement is."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.add(sub)            # from package import submodule
                elif target in known:
                    out.add(target)
    out.discard(name)
    return out


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> Dict[str, Set[str]]:
    mods = all_modules()
    known = set(mods) | extension_modules()
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def module_lines() -> Dict[str, int]:
    return {name: len(path.read_text().splitlines()) for name, path in all_modules().items()}
