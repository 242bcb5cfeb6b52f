"""The codec is the bottom layer: dumpcodec.copy imports nothing above it, and its
modules import each other without a cycle (imports inside functions included).

Read from the sources (``src/dumpcodec/copy`` and the Cython core's ``src/_fastcopy*``
files), so it holds whatever is installed.
"""
import ast
import os
import re

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
CORE = "dumpcodec._fastcopy"
# what the codec may import from the rest of dumpcodec
ALLOWED_OUTSIDE = {"dumpcodec.errors", CORE}


def _modules():
    mods = {CORE: None}
    for d, _, files in os.walk(os.path.join(SRC, "dumpcodec", "copy")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                name = os.path.relpath(path, SRC)[:-3].replace(os.sep, ".")
                mods[name[:-len(".__init__")] if f == "__init__.py" else name] = path
    return mods


def _target(name, mods):
    """The module an import of ``name`` runs: inside the codec, ``name`` itself or the
    module that holds it; outside, ``name`` as written."""
    if name.startswith("dumpcodec.copy"):
        while name not in mods:
            name = name.rpartition(".")[0]
    return name


def _graph():
    mods = _modules()
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        if path is None:
            continue
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            edges[mod] |= {_target(n, mods) for n in names if n.startswith("dumpcodec")}
    for f in os.listdir(SRC):
        if re.fullmatch(r"_fastcopy\w*\.(pyx|pxi)", f):
            text = open(os.path.join(SRC, f), encoding="utf-8").read()
            for base, name in re.findall(r"^\s*from (dumpcodec[\w.]*) (?:c?import) (\w+)",
                                         text, re.M):
                full = f"{base}.{name}"
                edges[CORE].add(full if full in mods else _target(base, mods))
    for m in edges:
        edges[m].discard(m)
    return mods, edges


def test_the_codec_imports_nothing_above_it():
    mods, edges = _graph()
    assert len(mods) > 15 and edges[CORE], "the graph was not read"
    outside = sorted((m, e) for m in edges for e in edges[m]
                     if e not in mods and e not in ALLOWED_OUTSIDE)
    assert not outside


def test_no_import_cycle_in_the_codec():
    _, edges = _graph()
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for e in sorted(edges.get(m, ())):
            visit(e)
        path.pop()
        done.add(m)

    for m in sorted(edges):
        visit(m)
