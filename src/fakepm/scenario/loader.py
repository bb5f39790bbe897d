"""Scenario files: read, follow `include:`, validate, and apply to a FakePostgres.

Every problem is reported as `file:line:col: message` and validation goes on after the
first one, so `fakepm check` shows them all. Loading a file with problems raises
ScenarioError (a ValueError) listing them.

Order when files include others: a file's own rules come before the rules of the files it
includes (so they win ties), and its `server:` settings and `tables:` override theirs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml
from typing import Any, Callable

from . import registry
from .context import Ctx, Problem, ScenarioError
from .nodes import Node, parse
from .rulespec import parse_columns, parse_rows, parse_rule

TOP_KEYS = ("server", "include", "rules", "tables", "schema", "description", "recording")
SERVER_KEYS = ("version", "database", "parameters", "users", "tls", "require_tls", "backend", "max_message_size",
               "authentication_timeout", "copy_keep_bytes")
LIMIT_KEYS = ("max_message_size", "authentication_timeout", "copy_keep_bytes")
USER_KEYS = ("password", "auth")
AUTH_METHODS = ("trust", "password", "md5", "scram-sha-256")
TABLE_KEYS = ("columns", "key", "rows", "replica_identity")


@dataclass
class TableSpec:
    name: str
    columns: tuple
    key: tuple = ()
    rows: list = field(default_factory=list)
    replica_identity: str = "d"


@dataclass
class Scenario:
    """A validated scenario; `apply(pg)` adds its settings, tables and rules to a FakePostgres."""

    path: str
    server: dict = field(default_factory=dict)
    rules: list = field(default_factory=list)  # Rule keyword arguments, in order
    tables: dict = field(default_factory=dict)  # qualified name -> TableSpec
    appliers: list = field(default_factory=list)  # from registered sections: fn(pg)
    schema: list = field(default_factory=list)  # backend mode: SQL run when the database is made, in order
    files: list = field(default_factory=list)  # every file read (the main one first)
    recording: dict | None = None  # `recording:` (proxy/recording.py): replayed by the ReplayEngine

    def apply(self, pg) -> None:
        from ..answers.rules import Rule

        _apply_server(pg, self.server)
        for t in self.tables.values():
            pg.table(t.name, t.columns, key=t.key, rows=t.rows, replica_identity=t.replica_identity)
        for kw in self.rules:
            pg._add_rule(Rule(**kw))  # fresh Rule objects: call counts belong to this server
        for fn in self.appliers:
            fn(pg)
        pg.schema.extend(self.schema)
        if self.recording is not None:
            from ..proxy.replay import ReplayEngine

            if pg.running:
                raise ValueError("a recording cannot be loaded into a running server: load it before start()")
            cfg = pg.config
            pg.backend_spec = ReplayEngine(self.recording, {"version": cfg.version, "parameters": cfg.parameters,
                                                            "database": cfg.database})


def _apply_server(pg, s: dict) -> None:
    from ..protocol.auth import user_auths

    cfg = pg.config
    if "tls" in s and s["tls"] != cfg.tls and pg.running:
        raise ValueError("server.tls cannot change on a running server: load the scenario before start()")
    for key in ("version", "database", "tls", "require_tls", *LIMIT_KEYS):
        if key in s:
            setattr(cfg, key, s[key])
    if "parameters" in s:
        cfg.parameters.update(s["parameters"])
    if "users" in s:
        users = dict(cfg.users or {})
        users.update(user_auths(s["users"]))
        cfg.users = users
        if pg.user not in users and users:
            pg.user = next(iter(s["users"]))  # the DSN should name a user who may log in
    if "backend" in s:
        if pg.running:
            raise ValueError("server.backend cannot change on a running server: load the scenario before start()")
        pg.backend_spec = None if s["backend"] == "none" else s["backend"]


# ------------------------------------------------------------------------------ loading
def load_scenario(path) -> Scenario:
    """Read and validate a scenario file (and its includes); raise ScenarioError on problems."""
    sc, problems = _load(os.fspath(path))
    if problems:
        raise ScenarioError(problems)
    return sc


def check_file(path) -> list[Problem]:
    _, problems = _load(os.fspath(path))
    return problems


def check_paths(paths, files_read: list | None = None) -> list[str]:
    """`fakepm check`: every problem of every file (directories: their *.yaml / *.yml files).
    `files_read` (a list) receives every file read, includes too, each once."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            files = sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith((".yaml", ".yml")))
            if not files:
                out.append(f"{p}:1:1: no .yaml or .yml files in this directory")
        else:
            files = [p]
        for f in files:
            sc, problems = _load(os.fspath(f))
            out.extend(str(x) for x in problems)
            if files_read is not None:
                files_read.extend(x for x in sc.files if x not in files_read)
    return out


def _load(path: str) -> tuple[Scenario, list[Problem]]:
    registry.load_plugins()
    sc = Scenario(path=path)
    ctx = Ctx(path)
    _load_into(sc, ctx, path, stack=[])
    problems = sorted(set(ctx.problems), key=lambda p: (sc.files.index(p.file) if p.file in sc.files else 99,
                                                        p.line, p.col, p.message))
    return sc, problems


# The largest scenario file read (a few thousand rules and rows are well under 1 MiB); a bigger
# file, or a device, is refused rather than read into memory. A recording's `recording:` tail
# (the recorder writes it last) is read with the C YAML parser and may be larger.
MAX_SCENARIO_BYTES = 64 << 20
MAX_RECORDING_BYTES = 1 << 30


def _split_recording(text: str) -> tuple[str, str] | None:
    """(head, tail) when `recording:` is the file's last top-level key (as the recorder writes it)."""
    import re

    m = re.search(r"^recording:[ \t]*(#.*)?$", text, re.M)
    if m is None:
        return None
    tail = text[m.start():]
    if re.search(r"^[^\s#-]", tail[m.end() - m.start():], re.M):
        return None  # another top-level key follows: the whole file goes through the located parser
    return text[:m.start()], tail


def _fast_yaml(text: str):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(text, Loader=loader)
    _refuse_shared(data)
    return data


# values a recording may stand for once its aliases are expanded (the recorder writes a large result
# seen again, and a row repeated within one, as aliases: pg8000's suite expands to ~5 million)
MAX_RECORDING_EXPANSION = 50_000_000


def _refuse_shared(data, limit: int = MAX_RECORDING_EXPANSION) -> None:
    """Aliases (a list or mapping used more than once) are how the recorder shares repeated
    results; nested ones could stand for billions of values once the replay walks them (an
    alias bomb). The expanded size is counted without expanding (each shared value once):
    beyond `limit` the tail is refused, so the caller falls back to the located parser, which
    says where (scenario/nodes.py MAX_ALIAS_EXPANSION)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # on the current path: seen again there means a cycle
    stack: list = [(data, False)]
    while stack:
        x, done = stack.pop()
        if not isinstance(x, (list, dict)) or (id(x) in sizes and not done):
            continue
        kids = list(x.values()) if isinstance(x, dict) else x
        if not done:
            if id(x) in open_:
                raise yaml.YAMLError("a value contains itself (a recursive alias)")
            open_.add(id(x))
            stack.append((x, True))
            stack.extend((k, False) for k in kids if isinstance(k, (list, dict)) and id(k) not in sizes)
            continue
        total = 1
        for k in kids:
            total += sizes.get(id(k), 1) if isinstance(k, (list, dict)) else 1
            if total > limit:
                raise yaml.YAMLError(f"aliases expand this recording beyond {limit} values")
        sizes[id(x)] = total
        open_.discard(id(x))


def read_plain(path) -> dict | None:
    """A scenario file as plain data (no validation), quickly (the recorder's mode 'new')."""
    with open(path, encoding="utf-8") as fh:
        return _fast_yaml(fh.read(MAX_RECORDING_BYTES))


def _entry_lines(tail: str, head_lines: int) -> list[int]:
    """The line of each `statements:` item of a recording tail written by the recorder."""
    out = []
    inside = False
    for n, line in enumerate(tail.split("\n")):
        if line.startswith("  statements:"):
            inside = True
        elif inside and line.startswith("  - "):
            out.append(head_lines + n + 1)
        elif inside and line[:1] not in (" ", ""):
            break
    return out


def _recording(ctx: Ctx, data, path: str, lines, where) -> dict | None:
    """Validate a `recording:` section (plain data); problems at the entry's line."""
    from ..proxy.recording import RecordingError, check_entry

    if not isinstance(data, dict):
        ctx.problems.append(Problem(path, where[0], where[1], "recording must be a mapping (match, connections, "
                                                              "statements)"))
        return None
    bad = [k for k in data if k not in ("match", "connections", "statements")]
    if bad:
        ctx.problems.append(Problem(path, where[0], where[1], f'recording: unknown key "{bad[0]}" (keys: match, '
                                                              'connections, statements)'))
    if data.get("match", "shape") not in ("shape", "exact"):
        ctx.problems.append(Problem(path, where[0], where[1], 'recording match must be "shape" or "exact", got '
                                                              f'{data.get("match")!r}'))
    conns = data.get("connections") or []
    if not isinstance(conns, list) or not all(isinstance(c, dict) and "user" in c for c in conns):
        ctx.problems.append(Problem(path, where[0], where[1], "recording connections must be a list of "
                                                              "{user, database, ...}"))
    stmts = data.get("statements") or []
    if not isinstance(stmts, list):
        ctx.problems.append(Problem(path, where[0], where[1], "recording statements must be a list"))
        return None
    before = len(ctx.problems)
    for i, e in enumerate(stmts):
        try:
            check_entry(e, i)
        except RecordingError as err:
            line = lines[i] if i < len(lines) else where[0]
            ctx.problems.append(Problem(path, line, 3, str(err)))
            if len(ctx.problems) - before > 100:
                break
    return data if len(ctx.problems) == before else None


def _what(node: Node) -> str:
    """What a value is, without quoting it (for files that may not be scenarios)."""
    if node.kind != "scalar":
        return "a mapping" if node.kind == "map" else "a list"
    v = node.value
    return "null" if v is None else "a boolean" if isinstance(v, bool) else "a number" \
        if isinstance(v, (int, float)) else "a string" if isinstance(v, str) else "a value"


def _quiet(message: str) -> str:
    """A YAML parser message without the file's text: quoted fragments longer than one character
    (an alias name, a token) are elided; the position still says where the problem is."""
    import re

    return re.sub(r"'[^'\n]{2,}'|\"[^\"\n]{2,}\"", "'...'", message)


def _load_into(sc: Scenario, ctx: Ctx, path: str, stack: list[str], include: Node | None = None) -> None:
    """Read `path` into `sc`. `include` is the `include:` item that named it (None for the main
    file): problems of a file that is not a scenario then name the file and never quote it."""
    real = os.path.realpath(path)
    if path not in sc.files:
        sc.files.append(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_RECORDING_BYTES + 1)
    except FileNotFoundError:
        ctx.problems.append(Problem(path, 1, 1, "file not found"))
        return
    except UnicodeDecodeError:
        ctx.problems.append(Problem(path, 1, 1, "cannot read file: it is not UTF-8 text"))
        return
    except OSError as e:
        ctx.problems.append(Problem(path, 1, 1, f"cannot read file: {e.strerror or type(e).__name__}"))
        return
    split = _split_recording(text) if len(text) > 4096 else None
    limit = MAX_RECORDING_BYTES if split is not None else MAX_SCENARIO_BYTES
    if len(text) > limit or (split is not None and len(split[0]) > MAX_SCENARIO_BYTES):
        ctx.problems.append(Problem(path, 1, 1, f"file larger than {limit >> 20} MiB: not a scenario"))
        return
    rec_plain = None
    if split is not None:
        head, tail = split
        head_lines = head.count("\n")
        try:
            rec_plain = (_fast_yaml(tail) or {}).get("recording")
        except yaml.YAMLError:
            split = None  # the located parser says where
        else:
            text = head + "recording: {}\n"
    root, syntax = parse(text, path)
    ctx.problems.extend(Problem(path, line, col, _quiet(msg) if include is not None else msg)
                        for line, col, msg in syntax)
    if root is None:
        return
    known = list(TOP_KEYS) + registry.section_names()
    if root.kind != "map":
        ctx.error(root, f"a scenario file must be a mapping (rules:, server:, tables:, ...), got {_what(root)}")
        return
    if include is not None and not any(k in known for k in root.value):
        ctx.error(include, f'include "{include.value}": {path} is not a scenario file (none of '
                           f'{", ".join(sorted(known))} at its top level)')
        return
    ctx.keys(root, known, "the scenario file")

    own_rules: list = []
    if (n := root.get("rules")) is not None and ctx.want_seq(n, "rules"):
        for i, item in enumerate(n):
            kw = parse_rule(ctx, item, i)
            if kw is not None:
                own_rules.append(kw)
    own_server = _server(ctx, root.get("server")) if root.get("server") is not None else {}
    own_tables = _tables(ctx, root.get("tables")) if root.get("tables") is not None else {}
    own_schema = _schema(ctx, root.get("schema"), path) if root.get("schema") is not None else []
    if (n := root.get("recording")) is not None:
        if split is not None:
            sc.recording = _recording(ctx, rec_plain, path, _entry_lines(tail, head_lines), (head_lines + 1, 1))
        else:
            lines = [item.line for item in n.get("statements")] if n.kind == "map" and n.get("statements") is not None \
                and n.get("statements").kind == "seq" else []
            sc.recording = _recording(ctx, n.plain(), path, lines, (n.line, n.col))
    own_appliers = []
    for key, sub in root.items():
        if key in TOP_KEYS:
            continue
        parser = registry.section_parser(key)
        if parser is None:
            if key in registry.RESERVED_SECTIONS:
                ctx.error(root.keys[key], f'"{key}:" is not supported yet (reserved for the {key} feature)')
            continue
        try:
            fn = parser(ctx, sub)
        except Exception as e:  # noqa: BLE001 - a plug-in's bug must still name the place
            ctx.error(sub, f"{key}: {type(e).__name__}: {e}")
            continue
        if fn is not None:
            own_appliers.append(fn)

    # the file's own rules first, then the included files' (in include order)
    sc.rules.extend(own_rules)
    inc = root.get("include")
    if inc is not None:
        items = list(inc) if inc.kind == "seq" else [inc]
        for item in items:
            if not ctx.want_str(item, "include item"):
                continue
            target = os.path.join(os.path.dirname(path), item.value)
            real_target = os.path.realpath(target)
            chain = stack + [real]
            if real_target in chain:
                names = [os.path.basename(p) for p in chain[chain.index(real_target):]] + [os.path.basename(target)]
                ctx.error(item, f'include "{item.value}" is circular: {" -> ".join(names)}')
                continue
            if not os.path.isfile(target):
                ctx.error(item, f'include "{item.value}": file not found ({target})')
                continue
            sub = Scenario(path=target)
            sub.files = sc.files
            _load_into(sub, ctx, target, chain, item)
            sc.rules.extend(sub.rules)
            if sc.recording is None:
                sc.recording = sub.recording
            for k, v in sub.server.items():
                sc.server.setdefault(k, v)
            for k, v in sub.tables.items():
                sc.tables.setdefault(k, v)
            sc.appliers.extend(sub.appliers)
            sc.schema.extend(sub.schema)  # an included file's SQL runs before this file's
    for k, v in own_server.items():
        if k in ("parameters", "users") and k in sc.server:
            sc.server[k] = {**sc.server[k], **v}
        else:
            sc.server[k] = v
    sc.tables.update(own_tables)
    sc.schema.extend(own_schema)
    sc.appliers[:0] = own_appliers


def _server(ctx: Ctx, n: Node) -> dict:
    out: dict[str, Any] = {}
    if not ctx.want_map(n, "server"):
        return out
    ctx.keys(n, SERVER_KEYS, "server")
    if (v := n.get("version")) is not None and ctx.want_str(v, "server version", allow_numbers=True):
        text = v.text()
        if not text[:1].isdigit():
            ctx.error(v, f'server version must start with a number such as "16.4", got "{text}"')
        else:
            out["version"] = text
    if (v := n.get("database")) is not None and ctx.want_str(v, "server database", allow_numbers=True):
        out["database"] = v.text()
    if (v := n.get("parameters")) is not None and ctx.want_map(v, "server parameters"):
        params = {}
        for key, sub in v.items():
            if sub.kind != "scalar" or sub.value is None:
                ctx.error(sub, f'server parameter "{key}" must be a single value, got {sub.describe()}')
            else:
                params[key] = sub.text()
        out["parameters"] = params
    if (v := n.get("users")) is not None and ctx.want_map(v, "server users"):
        out["users"] = _users(ctx, v)
    for key in ("tls", "require_tls"):
        if (v := n.get(key)) is not None and ctx.want_bool(v, f"server {key}"):
            out[key] = v.value
    for key in LIMIT_KEYS:
        if (v := n.get(key)) is not None:
            try:
                out[key] = parse_seconds(v.value) if key == "authentication_timeout" else parse_size(v.value, key)
            except ValueError as e:
                ctx.error(v, f"server {key}: {e}")
    if (v := n.get("backend")) is not None and ctx.want_str(v, "server backend"):
        problem = backend_spec_problem(v.text())
        if problem:
            ctx.error(v, problem)
        else:
            out["backend"] = v.text()
    return out


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}
_TIME_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


def parse_size(value, what: str = "size") -> int:
    """A byte count: an integer, or PostgreSQL's units ("64MB", "512kB", "1GB"; 1024-based).
    max_message_size must lie within 1 byte and PostgreSQL's 1 GiB."""
    import re

    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 67108864 or \"64MB\", got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _SIZE_UNITS:
            raise ValueError(f"expected a size such as 67108864 or \"64MB\" (units B, kB, MB, GB), got {value!r}")
        n = int(m.group(1)) * _SIZE_UNITS[unit]
    if what == "max_message_size":
        from ..protocol.framing import check_max_message_size

        return check_max_message_size(n)
    if n < 0:
        raise ValueError(f"a size cannot be negative, got {value!r}")
    return n


def parse_seconds(value) -> float:
    """Seconds: a number, or PostgreSQL's units ("60s", "1min", "500ms"); 0 turns the timeout off."""
    import re

    if isinstance(value, bool):
        raise ValueError(f"expected seconds such as 60 or \"1min\", got {value!r}")
    if isinstance(value, (int, float)):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _TIME_UNITS:
            raise ValueError(f"expected seconds such as 60 or \"1min\" (units ms, s, min, h), got {value!r}")
        n = float(m.group(1)) * _TIME_UNITS[unit]
    if n < 0:
        raise ValueError(f"a timeout cannot be negative, got {value!r}")
    return n


def backend_spec_problem(spec: str) -> str | None:
    """Why a backend spec is not one fakepm knows (None when it is)."""
    import re

    if spec in ("none", "postgres") or re.fullmatch(r"postgres:\d+(\.\d+)?", spec):
        return None
    if spec.startswith(("postgresql://", "postgres://")):
        return None
    return (f'server backend must be none, postgres, postgres:<major version> (e.g. postgres:15) or a '
            f'postgresql:// URL of an existing server, got "{spec}"')


def _schema(ctx: Ctx, n: Node, path: str) -> list:
    """`schema:` -- SQL for the backend database: each item a .sql file (relative to this file) or SQL text."""
    items = list(n) if n.kind == "seq" else [n]
    out = []
    for item in items:
        if not ctx.want_str(item, "schema item"):
            continue
        text = item.text()
        if text.rstrip().lower().endswith(".sql") and "\n" not in text:
            target = os.path.join(os.path.dirname(path), text.strip())
            try:
                with open(target, encoding="utf-8") as fh:
                    out.append(fh.read())
            except FileNotFoundError:
                ctx.error(item, f'schema file "{text.strip()}" not found ({target})')
            except (OSError, UnicodeDecodeError) as e:
                ctx.error(item, f'schema file "{text.strip()}": cannot read it: {type(e).__name__}')
        else:
            out.append(text)
    return out


def _users(ctx: Ctx, n: Node) -> dict:
    from ..protocol.auth import UserAuth

    users = {}
    for name, spec in n.items():
        if spec.kind == "scalar" and spec.value is None:
            users[name] = UserAuth("trust")
            continue
        if spec.kind == "scalar":
            if ctx.want_str(spec, f'password of user "{name}"', allow_numbers=True):
                users[name] = UserAuth("scram-sha-256", spec.text())
            continue
        if not ctx.want_map(spec, f'user "{name}"'):
            continue
        ctx.keys(spec, USER_KEYS, f'user "{name}"')
        password = None
        if (p := spec.get("password")) is not None and ctx.want_str(p, f'password of user "{name}"',
                                                                     allow_numbers=True):
            password = p.text()
        method = "scram-sha-256" if password else "trust"
        a = spec.get("auth")
        if a is not None and ctx.want_str(a, f'auth of user "{name}"'):
            if a.value not in AUTH_METHODS:
                from .context import did_you_mean

                ctx.error(a, f'auth of user "{name}" must be one of {", ".join(AUTH_METHODS)}, got "{a.value}"'
                             + did_you_mean(a.value, AUTH_METHODS))
                continue
            method = a.value
        try:
            users[name] = UserAuth(method, password)
        except ValueError as e:
            ctx.error(spec, f'user "{name}": {e}')
    return users


def _tables(ctx: Ctx, n: Node) -> dict:
    from ..answers.catalog import split_name

    out: dict[str, TableSpec] = {}
    if not ctx.want_map(n, "tables"):
        return out
    for name, spec in n.items():
        where = f'table "{name}"'
        if not ctx.want_map(spec, where):
            continue
        ctx.keys(spec, TABLE_KEYS, where, required=("columns",))
        cols_node = spec.get("columns")
        if cols_node is None:
            continue
        before = len(ctx.problems)
        columns, _ = parse_columns(ctx, cols_node)
        if columns is None or len(ctx.problems) > before:
            continue
        names = [c.name for c in columns]
        key: tuple = ()
        if (k := spec.get("key")) is not None:
            items = list(k) if k.kind == "seq" else [k]
            for item in items:
                if ctx.want_str(item, f"{where} key", allow_numbers=True) and item.text() not in names:
                    from .context import did_you_mean

                    ctx.error(item, f'{where} key column "{item.text()}" is not one of its columns '
                                    f'({", ".join(names)})' + did_you_mean(item.text(), names))
            key = tuple(i.text() for i in items)
        rows = parse_rows(ctx, spec.get("rows"), columns, f"{where} rows") if spec.get("rows") is not None else []
        ri = "d"
        if (r := spec.get("replica_identity")) is not None and ctx.want_str(r, f"{where} replica_identity"):
            ri = {"default": "d", "full": "f", "nothing": "n", "index": "i"}.get(r.value, r.value)
            if ri not in ("d", "f", "n", "i"):
                ctx.error(r, f"{where} replica_identity must be default, full, nothing or index, got \"{r.value}\"")
        schema, tname = split_name(name)
        out[f"{schema}.{tname}"] = TableSpec(name, columns, key, rows, ri)
    return out


Applier = Callable[[Any], None]
