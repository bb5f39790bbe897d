"""PostgreSQL type names as written in SQL -> the catalog name (``integer`` -> ``int4``).

``parse_type(tokens, i)`` reads a type name the way gram.y spells them (``double precision``,
``character varying(20)``, ``timestamp(3) with time zone``, ``pg_catalog.int4``, ``text[]``,
quoted names kept as written) from fakepm.sql.lexer tokens; ``type_name_from_sql(text)`` does
the same for a whole text, ``dt_name(node)`` for a sqlglot DataType. Slots' casts and the
parameter-type hints use these names, which are the type registry's (protocol/types.py).
"""

from __future__ import annotations

import functools

from ..sql.lexer import Token, iter_tokens

__all__ = ["parse_type", "type_name_from_sql", "dt_name"]


_TYPE_ALIASES = {
    "int": "int4", "integer": "int4", "bigint": "int8", "smallint": "int2", "real": "float4",
    "float": "float8", "double precision": "float8", "decimal": "numeric", "dec": "numeric",
    "boolean": "bool", "character varying": "varchar", "char varying": "varchar", "character": "bpchar",
    "char": "bpchar", "nchar": "bpchar", "national character": "bpchar",
    "national character varying": "varchar", "nvarchar": "varchar",
    "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
    "time with time zone": "timetz", "time without time zone": "time", "bit varying": "varbit",
    "serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8", "smallserial": "int2",
    "serial2": "int2",
}


def parse_type(toks: list[Token], i: int) -> tuple[str | None, int]:
    """Parse a type name from toks[i:]; return (normalized name, index after it)."""
    n = len(toks)
    parts: list[str] = []
    quoted_last = False
    if i >= n or toks[i].kind not in ("w", "q"):
        return None, i
    while True:
        t = toks[i]
        parts.append(t.value)
        quoted_last = t.kind == "q"
        i += 1
        if i + 1 < n and toks[i].kind == "c" and toks[i].value == "." and toks[i + 1].kind in ("w", "q"):
            i += 1
            continue
        break
    if len(parts) > 1 and parts[0] == "pg_catalog":
        parts = parts[1:]
    name = ".".join(parts)
    if len(parts) == 1 and not quoted_last:
        words = [name]

        def peek(k: int) -> str | None:
            return toks[k].value if k < n and toks[k].kind == "w" else None

        if name in ("double",) and peek(i) == "precision":
            words.append("precision")
            i += 1
        elif name in ("character", "char", "nchar", "bit", "national"):
            if name == "national" and peek(i) in ("character", "char"):
                words.append("character")
                i += 1
            if peek(i) == "varying":
                words.append("varying")
                i += 1
        if name in ("timestamp", "time"):
            j = i
            if j < n and toks[j].kind == "c" and toks[j].value == "(":
                j = _skip_parens(toks, j)
            if peek(j) in ("with", "without") and peek(j + 1) == "time" and peek(j + 2) == "zone":
                words += [toks[j].value, "time", "zone"]
                i = j + 3
        name = " ".join(words)
        name = _TYPE_ALIASES.get(name, name)
    if i < n and toks[i].kind == "c" and toks[i].value == "(":
        i = _skip_parens(toks, i)
        if name in ("timestamp", "time") and i + 2 < n and all(
            toks[i + k].kind == "w" for k in range(3)
        ) and toks[i].value in ("with", "without") and toks[i + 1].value == "time" and toks[i + 2].value == "zone":
            name = _TYPE_ALIASES[f"{name} {toks[i].value} time zone"]
            i += 3
    while i + 1 < n and toks[i].kind == "c" and toks[i].value == "[":
        j = i + 1
        if toks[j].kind == "n" and j + 1 < n:
            j += 1
        if toks[j].kind == "c" and toks[j].value == "]":
            name += "[]"
            i = j + 1
        else:
            break
    return name, i


def _skip_parens(toks: list[Token], i: int) -> int:
    depth = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        if t.kind == "c" and t.value == "(":
            depth += 1
        elif t.kind == "c" and t.value == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


@functools.lru_cache(maxsize=1024)
def type_name_from_sql(text: str) -> str | None:
    toks = list(iter_tokens(text))
    name, _ = parse_type(toks, 0)
    return name


# sqlglot's generated type names that differ from the catalog names
_SQLGLOT_TYPES = {
    "int": "int4", "bigint": "int8", "smallint": "int2", "real": "float4", "double precision": "float8",
    "decimal": "numeric", "boolean": "bool", "char": "bpchar", "varbinary": "bytea", "bytea": "bytea",
}


def dt_name(dt) -> str | None:
    try:
        text = dt.sql(dialect="postgres")
    except Exception:  # noqa: BLE001
        return None
    name = type_name_from_sql(text)
    if name is None:
        return None
    base = name.rstrip("[]")
    suffix = name[len(base):]
    return _SQLGLOT_TYPES.get(base, base) + suffix
