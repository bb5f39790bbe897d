"""Record from a real PostgreSQL, replay as a scenario; a programmable pass-through proxy.

    from fakepm.proxy import Proxy, ProxyHooks, Anonymize, Recorder
"""

from .hooks import Anonymize, ColumnInfo, ConnInfo, Log, ProxyHooks, answer, pseudonym
from .relay import Proxy
from .upstream import UpstreamError, UpstreamURL

__all__ = ["Proxy", "ProxyHooks", "Anonymize", "Log", "ColumnInfo", "ConnInfo", "answer", "pseudonym",
           "UpstreamError", "UpstreamURL"]
