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
from .record import Recorder, RecordError, Recording
from .relay import Proxy
from .upstream import UpstreamError, UpstreamURL

__all__ = ["Proxy", "ProxyHooks", "Anonymize", "Log", "ColumnInfo", "ConnInfo", "answer", "pseudonym",
           "Recorder", "Recording", "RecordError", "UpstreamError", "UpstreamURL"]
