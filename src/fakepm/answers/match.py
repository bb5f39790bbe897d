"""SQL matching: does a query match a rule's statement, and with which parameter values?

A rule written ``SELECT name FROM users WHERE id = $1`` must match both
``select  name from "users" where id = 5;`` (psycopg2/psql interpolate on the client and
send a simple Query) and ``SELECT name FROM users WHERE id = $1`` with 5 bound over the
extended protocol (psycopg 3, asyncpg). In both cases the rule sees ``params == [5]``.

How it works, one concept per module (this one gathers their public names):

* fakepm.sql -- the one PostgreSQL lexer, statement splitting, ``classify``/``default_tag``
  (the SQL-text room; matching reads its tokens);
* answers/slots.py -- the data: ``Shape`` (a template text + ``Slot``s), ``MISSING``;
* answers/shape.py -- ``shape_of(sql)``: the template, from sqlglot for the statements it
  understands, else from the lexer's tokens (the "fallback"); the safety checks against
  sqlglot losing meaning;
* answers/typenames.py -- type names as written -> catalog names (casts on slots);
* answers/unify.py -- ``unify(rule, query, params)``: equal templates, slots paired up;
* answers/values.py -- ``values_equal``: the lenient equality of a rule's and a query's value;
* answers/paramtypes.py -- ``infer_param_types``: types for an untyped ``$n`` at Describe.

Measured (2 vCPU machine, CPython 3.11, sqlglot 30.30, timeit medians):
  shape_of cold, ``SELECT name FROM users WHERE id = $1``      0.5-1.0 ms
  shape_of cold, SQLAlchemy's 3 kB get_columns query           17-30 ms
  shape_of cold, fallback statement (``BEGIN``)                 ~6 us
  shape_of cached hit                                           ~0.17 us
  unify, matching pair with one literal slot                    ~1.1 us (3 slots ~1.6 us)
  unify, the same cached shape (exact-text fast path)           ~0.7 us
  unify, different templates                                    ~0.3 us
  shape_of(rule) + shape_of(query) + unify, all cached          ~1.5 us
  split_statements (cached / no ';')  ~0.25 us; classify cached ~0.16 us;
  default_tag cached ~0.6 us; values_equal(5, '5') ~0.4 us
"""

from __future__ import annotations

from ..sql.statements import split_statements
from ..sql.tags import classify, default_tag, insert_values_rows
from .paramtypes import infer_param_types
from .shape import could_have_template, shape_of, shape_without_sqlglot
from .slots import MISSING, Shape, Slot
from .unify import unify
from .values import values_equal

__all__ = [
    "MISSING",
    "Shape",
    "Slot",
    "classify",
    "default_tag",
    "could_have_template",
    "infer_param_types",
    "insert_values_rows",
    "shape_of",
    "shape_without_sqlglot",
    "split_statements",
    "unify",
    "values_equal",
]
