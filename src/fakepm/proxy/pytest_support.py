"""`@pytest.mark.fakepm(scenario=..., record=MODE, upstream=URL)`: record instead of replaying, vcrpy-style.

    once  record when the file does not exist yet, replay it when it does
    new   relay to the upstream and append exchanges the file does not have
          (replays the file when no upstream is configured, so CI without a database works)
    all   relay to the upstream and rewrite the file
    none  replay (the default)

The upstream comes from `upstream=` or the FAKEPM_UPSTREAM environment variable. While
recording, the `fakepm` fixture is a `Recording` (it has `.dsn`, not the rule API).
"""

from __future__ import annotations

import os

from .record import MODES, Recording


def maybe_record(scenario, mode: str, upstream: str | None, test_path: str) -> Recording | None:
    """A started-to-be Recording when this test should record, else None (plain replay)."""
    if mode not in MODES:
        raise ValueError(f"@pytest.mark.fakepm(record={mode!r}): expected one of {', '.join(MODES)}")
    if mode == "none":
        return None
    if isinstance(scenario, (list, tuple)):
        if len(scenario) != 1:
            raise ValueError("@pytest.mark.fakepm(record=...) needs exactly one scenario file to record into")
        scenario = scenario[0]
    if not scenario:
        raise ValueError("@pytest.mark.fakepm(record=...) needs scenario= (the file to record into)")
    path = str(scenario)
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(test_path), path)
    upstream = upstream or os.environ.get("FAKEPM_UPSTREAM")
    exists = os.path.exists(path)
    if mode == "once" and exists:
        return None
    if upstream is None:
        if exists and mode == "new":
            return None
        raise ValueError(f"@pytest.mark.fakepm(record={mode!r}) needs upstream= or $FAKEPM_UPSTREAM "
                         f"to record {path}")
    # 'once' on a missing file records everything
    return Recording(upstream, path, mode="all" if mode == "once" else mode)
