"""The house's rules, checked on the source itself (no import of fakepm needed).

1. No circles: the import graph of src/fakepm, built from the source with `ast`, has no cycle.

   What counts as an edge, and why:
   * every `import` / `from ... import` statement, at module level *and* inside functions and
     methods: a lazy import defers a cost, it does not make a dependency go away, so a circle
     through one is still a circle (two rooms that each need the other to be understood);
   * except under `if TYPE_CHECKING:` -- annotations only, never executed;
   * importing `fakepm.a.b` runs the package `fakepm/a/__init__.py` first: an edge to that
     package as well, unless the importer lives inside it (the package is then already being
     set up). The root package `fakepm` is left out of these implicit edges (every module is
     inside it); an explicit `from fakepm import X` inside src/ is still an edge;
   * a package's PEP 562 `__getattr__` (names imported when first asked for, fakepm/proxy's
     Proxy and Recorder) is a node of its own, ``pkg:__getattr__``: it runs when someone asks
     the package for a name, not when one of its modules is imported. `from pkg import Name`
     and `import pkg` reach it; importing `pkg.module` does not.

2. One lexer: no regular expression anywhere in src/ outside fakepm/sql/lexer.py matches SQL
   quotes or comments. Every `re.*(...)` call whose pattern is a literal is scanned; a pattern
   holding a quote character, `--` or `/*` fails the test unless it is listed in
   ``_NOT_SQL`` with the reason it is not about SQL text.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "fakepm"
LEXER = PKG / "sql" / "lexer.py"


def _modules(src: Path, root: str) -> dict[str, Path]:
    out = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _targets(module: str, node: ast.Import | ast.ImportFrom, modules: dict, packages: set,
             root: str) -> list[tuple[str, str | None]]:
    """(imported module, name imported from it or None) for one import statement (`root` only)."""
    is_pkg = module in packages
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names if a.name.split(".")[0] == root]
    if node.level:
        base = module.split(".")
        if not is_pkg:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    if origin.split(".")[0] != root:
        return []
    for alias in node.names:
        sub = f"{origin}.{alias.name}"
        out.append((sub, None) if sub in modules else (origin, alias.name))
    return out


def import_graph(src: Path = SRC, root: str = "fakepm") -> dict[str, set[str]]:
    """The import graph of the package `root` under `src` (see the module docstring)."""
    modules = _modules(src, root)
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}

    def owner(name: str) -> str | None:
        """The module a dotted name lives in (fakepm.a.b.attr -> fakepm.a.b)."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    lazy_exports = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        if name in packages and any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            lazy_exports.add(name)
            graph[f"{name}:__getattr__"] = set()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node: ast.AST, source: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child.test):
                    for c in child.orelse:
                        visit_one(c, source)
                    continue
                visit_one(child, source)

        def visit_one(child: ast.AST, source: str) -> None:
            if (isinstance(child, ast.FunctionDef) and child.name == "__getattr__" and name in lazy_exports
                    and child in tree.body):
                visit(child, f"{name}:__getattr__")
                return
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target, attr in _targets(name, child, modules, packages, root):
                    mod = owner(target)
                    if mod is None:
                        continue
                    add(source, mod)
                    if mod in lazy_exports and (attr is not None or isinstance(child, ast.Import)):
                        add(source, f"{mod}:__getattr__")
            visit(child, source)

        def add(source: str, target: str) -> None:
            if target == source:
                return
            graph[source].add(target)
            parts = target.split(":")[0].split(".")
            for i in range(2, len(parts)):  # the packages on the way, the root excepted
                pkg = ".".join(parts[:i])
                if pkg in packages and not source.startswith(pkg + ".") and source != pkg:
                    graph[source].add(pkg)

        visit(tree, name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _path_in(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One circle through a component, for the failure message."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return " -> ".join(reversed(path)) + f" -> {start}"
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return ", ".join(comp)


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 80 and "fakepm.sql.lexer" in graph
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_path_in(graph, c) for c in cycles)


def test_the_graph_follows_the_rules_of_the_docstring(tmp_path):
    """On a made-up package, so the cycle test cannot pass by seeing nothing."""
    files = {
        "top/__init__.py": "from .a import A\n",
        "top/a.py": "from . import b\nA = 1\n",  # module level
        "top/b.py": "def f():\n    from .sub.c import C\n    return C\n",  # inside a function; sub's package too
        "top/sub/__init__.py": "def __getattr__(name):\n    from ..a import A\n    return A\n",  # PEP 562
        "top/sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import A\nC = 2\n",
        "top/d.py": "from top.sub import anything\n",  # a name from the package: its __getattr__ too
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path, "top")
    assert graph["top.a"] == {"top.b"}
    assert graph["top.b"] == {"top.sub.c", "top.sub"}
    assert graph["top.sub.c"] == set()  # TYPE_CHECKING only
    assert graph["top.sub"] == set() and graph["top.sub:__getattr__"] == {"top.a"}
    assert graph["top.d"] == {"top.sub", "top.sub:__getattr__"}
    assert graph["top"] == {"top.a"}
    assert _cycles(graph) == []
    (tmp_path / "top/sub/c.py").write_text("from ..a import A\nC = 2\n")
    cycles = _cycles(import_graph(tmp_path, "top"))
    assert cycles == [["top.a", "top.b", "top.sub.c"]]


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# ---------------------------------------------------------------------------- one lexer

# Patterns with a quote, `--` or `/*` that are not about SQL text: (file, a piece of the pattern) -> why
_NOT_SQL = {
    ("session/commands.py", "(?:-c\\s*|--)"): "libpq's `options` startup parameter: -c name=value / --name=value switches",
    ("dsn.py", "[\\s'\\\\]"): "a libpq connection-string value that needs quoting (the DSN fakepm prints)",
    ("protocol/types.py", "[{}\",\\\\\\s]"): "array_out's characters that make an array element quoted",
    ("scenario/loader.py", "'[^'\\n]{2,}'"): "the quoted fragments of a YAML parser's message (elided from errors)",
}

_RE_FUNCS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer"}


def _pattern_text(node: ast.expr) -> str | None:
    """The literal pattern of a call's first argument (f-strings and concatenations included)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        v = node.value
        return v.decode("latin-1") if isinstance(v, bytes) else v
    if isinstance(node, ast.JoinedStr):
        return "".join(_pattern_text(v) or "" if not isinstance(v, ast.FormattedValue) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pattern_text(node.left), _pattern_text(node.right)
        return (left or "") + (right or "") if left is not None or right is not None else None
    if isinstance(node, ast.Name):
        return None  # a variable (user-supplied regex, or a module constant scanned where it is defined)
    return None


def _regex_patterns(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    consts = {}  # module-level NAME = "..." pieces that patterns are built from (`_IDENT`)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = _pattern_text(node.value)
            if text is not None:
                consts[node.targets[0].id] = text
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        f = node.func
        if not (isinstance(f, ast.Attribute) and f.attr in _RE_FUNCS and isinstance(f.value, ast.Name)
                and f.value.id == "re"):
            continue
        arg = node.args[0]
        names = {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
        text = _pattern_text(arg) or ""
        text += "".join(consts.get(n, "") for n in names)
        yield node.lineno, text


def _about_sql_quotes(pattern: str) -> bool:
    return any(c in pattern for c in ("'", '"', "--", "/*", "/\\*"))


def test_no_regular_expression_over_sql_quotes_or_comments_outside_the_lexer():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path == LEXER:
            continue
        rel = path.relative_to(PKG).as_posix()
        for line, pattern in _regex_patterns(path):
            if not _about_sql_quotes(pattern):
                continue
            if any(rel == f and piece in pattern for (f, piece) in _NOT_SQL):
                continue
            found.append(f"src/fakepm/{rel}:{line}: {pattern[:120]!r}")
    assert not found, ("regular expressions over SQL quotes/comments outside fakepm/sql/lexer.py (use fakepm.sql's "
                       "tokens, or list a pattern that is not about SQL in _NOT_SQL):\n" + "\n".join(found))


def test_the_scan_sees_the_patterns_it_must_refuse(tmp_path):
    """The scanner itself: the old spellings that this test replaced are caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import re\n"
        "_IDENT = r'(?:\"(?:[^\"]|\"\")+\"|[^\\s;,()\"]+)'\n"
        "A = re.compile(r\"'(?:[^']|'')*'\")\n"
        "B = re.compile(r\"^SAVEPOINT\\s+(\" + _IDENT + \")\", re.I)\n"
        "C = re.compile(r\"--[^\\n]*|/\\*.*?\\*/\", re.S)\n"
        "D = re.compile(r\"\\s+\")\n"
        "E = re.sub(f\"x{1}'\", '', 'y')\n"
    )
    flagged = {line for line, p in _regex_patterns(sample) if _about_sql_quotes(p)}
    assert flagged == {3, 4, 5, 7}


@pytest.mark.parametrize("entry", sorted(_NOT_SQL))
def test_every_exception_is_still_needed(entry):
    path, piece = entry
    patterns = [p for _, p in _regex_patterns(PKG / path)]
    assert any(piece in p for p in patterns), f"{entry} no longer exists: drop it from _NOT_SQL"


def test_the_lexer_module_is_where_the_quotes_are():
    patterns = [p for _, p in _regex_patterns(LEXER)]
    assert any(_about_sql_quotes(p) for p in patterns)
    assert os.path.exists(LEXER)
