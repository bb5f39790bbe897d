"""A `fakepm proxy --plugin proxy_plugin_example:hooks` plugin used by the tests (and as an example)."""

from fakepm.proxy import Anonymize, pseudonym

hooks = Anonymize({"email": pseudonym})
