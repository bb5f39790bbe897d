"""Small containers with limits: an LRU bounded by entry count *and* by bytes, and short keys.

A test double must not grow without end whatever its clients send: every cache and every
journal in fakepm is bounded by how many entries it keeps and by how many bytes they hold,
with the reason for each limit written beside it (as PostgreSQL's own limits are). Sizes
are estimates (the length of the text or bytes an entry holds), not exact object sizes:
what matters is that a client sending 100 MB cannot make fakepm keep 100 MB for long.

No I/O, no threads, no clock: any room may use this module.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["SHORT_KEY_CHARS", "BoundedCache", "short_key"]

# Texts up to this length are their own cache key; longer ones are keyed by a digest, so a
# cache never holds a client's long text as a key (a 100 MB query is 32 bytes of key).
SHORT_KEY_CHARS = 1024


def short_key(text: str | bytes) -> Hashable:
    """`text` itself when short, else (length, sha256 digest): a small key for a long text."""
    if len(text) <= SHORT_KEY_CHARS:
        return text
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return (len(text), hashlib.sha256(data).digest())


class BoundedCache:
    """A least-recently-used mapping bounded by `max_entries` and by `max_bytes`.

    `sizeof(key, value)` estimates an entry's bytes (default: the key's length, when it has
    one, plus 100). An entry bigger than `max_bytes` is simply not kept. Not thread-safe:
    each user keeps it on one thread (the server's loop) or guards it.
    """

    __slots__ = ("_d", "_sizeof", "max_bytes", "max_entries", "size")

    def __init__(self, max_entries: int, max_bytes: int, sizeof: Callable[[Any, Any], int] | None = None):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a BoundedCache needs max_entries >= 1 and max_bytes >= 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # estimated bytes held
        self._d: OrderedDict = OrderedDict()  # key -> (value, size)
        self._sizeof = sizeof or _default_sizeof

    def get(self, key, default=None):
        item = self._d.get(key)
        if item is None:
            return default
        self._d.move_to_end(key)
        return item[0]

    def __contains__(self, key) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self):
        return iter(self._d)

    def __bool__(self) -> bool:
        return bool(self._d)

    def __getitem__(self, key):
        item = self._d.get(key)
        if item is None:
            raise KeyError(key)
        self._d.move_to_end(key)
        return item[0]

    def __setitem__(self, key, value) -> None:
        self.put(key, value)

    def __delitem__(self, key) -> None:
        _, n = self._d.pop(key)
        self.size -= n

    def pop(self, key, default=None):
        item = self._d.pop(key, None)
        if item is None:
            return default
        self.size -= item[1]
        return item[0]

    def put(self, key, value) -> bool:
        """Keep `value` under `key` (evicting the least recently used); False when it is too big."""
        n = self._sizeof(key, value)
        old = self._d.pop(key, None)
        if old is not None:
            self.size -= old[1]
        if n > self.max_bytes:
            return False
        d = self._d
        while d and (len(d) >= self.max_entries or self.size + n > self.max_bytes):
            _, (_, m) = d.popitem(last=False)
            self.size -= m
        d[key] = (value, n)
        self.size += n
        return True

    def clear(self) -> None:
        self._d.clear()
        self.size = 0

    def keys(self):
        return self._d.keys()


def _default_sizeof(key, value) -> int:
    try:
        return len(key) + 100
    except TypeError:
        return 100
