"""SQL text: one PostgreSQL lexer and what every room reads from its tokens.

    from fakepm.sql import tokens, split_statements, count_params, classify, redact_passwords

The room at the bottom of the house for SQL *text* (protocol/ is bytes and messages; answers/
decides what to say): it imports nothing of fakepm, and session/, answers/, proxy/ and
walsender/ all read SQL through it, so a quote, a dollar quote or a comment means the same
thing everywhere.

* lexer.py -- THE lexer (scan.l's tokens: every string spelling, quoted identifiers, nested
  comments, parameters, operators, numbers). The only module allowed a regular expression
  over SQL quotes or comments (tests/unit/test_house.py checks the whole source tree).
* statements.py -- split a simple Query, count a statement's ``$n``, find and replace string
  constants, redact PASSWORD constants.
* tags.py -- classify a statement by its command tag, PostgreSQL's default CommandComplete.

Grammars built on these tokens live with the room that owns the command: COPY in
answers/copyspec.py, the replication commands in walsender/grammar.py, the session commands
(SET, LISTEN, NOTIFY, cursors ...) in session/commands.py, matching shapes in answers/shape.py.
"""

from .lexer import Token, is_blank, iter_tokens, tokens
from .statements import count_params, literals, redact_passwords, replace_literals, split_statements
from .tags import classify, default_tag, insert_values_rows

__all__ = ["Token", "tokens", "iter_tokens", "is_blank", "split_statements", "count_params",
           "literals", "replace_literals", "redact_passwords", "classify", "default_tag", "insert_values_rows"]
