"""Record from a real PostgreSQL, replay as a scenario; a programmable pass-through proxy.

    from fakepm.proxy import Proxy, ProxyHooks, Anonymize, Recording

One relay serves backend mode, the proxy and the recorder: link.py (sans-I/O: fakepm's end
of an upstream session, bytes passed through untouched), backend.py (per message: a rule
answers or the upstream does), hooked.py (what is decoded when hooks are installed),
upstream.py (fakepm's own authenticated client connection), tracker.py (which reply answers
which message, for hooks), relay.py (the Proxy: backend mode over a server the user names),
hooks.py (what users program), record.py (hook -> scenario YAML), copyfmt.py (COPY data ->
rows), drift.py (recording vs the real server), cli.py (`fakepm record | drift | proxy`),
pytest_support.py (`@pytest.mark.fakepm(record=...)`).
"""

from .hooks import Anonymize, ColumnInfo, ConnInfo, Log, ProxyHooks, answer, pseudonym
from .upstream import UpstreamError, UpstreamURL

__all__ = ["Proxy", "ProxyHooks", "Anonymize", "Log", "ColumnInfo", "ConnInfo", "answer", "pseudonym",
           "Recorder", "Recording", "RecordError", "UpstreamError", "UpstreamURL"]


def __getattr__(name: str):
    """Proxy and the recorder, imported when asked for (PEP 562). They stand above the server
    (a Proxy is a FakePostgres in backend mode), while the rest of this room stands below it
    (the engine and the server import upstream.py, link.py, backend.py): importing one of those
    must not import the server's users back (tests/unit/test_house.py checks the import graph)."""
    if name == "Proxy":
        from .relay import Proxy

        return Proxy
    if name in ("Recorder", "Recording", "RecordError"):
        from . import record

        return getattr(record, name)
    raise AttributeError(f"module 'fakepm.proxy' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
