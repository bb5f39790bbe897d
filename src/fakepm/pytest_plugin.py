"""pytest plugin (registered through the `pytest11` entry point).

* `fakepm` fixture: a started FakePostgres per test, stopped afterwards.
* `@pytest.mark.fakepm(scenario="path.yaml", verify=True, **FakePostgres kwargs)` configures it
  (limits too: `max_message_size=`, `authentication_timeout=`, `copy_keep_bytes=`).
* At teardown `pg.verify()` runs (unless `verify=False`): unmet `expect:` rules, unmatched
  queries and handler failures fail the test.
* When a test fails, the report gets a "fakepm transcript" section: the journal and the
  recent protocol summaries of every connection.
"""

from __future__ import annotations

import os

import pytest

from .server import FakePostgres

_PG_KEY = pytest.StashKey[FakePostgres]()


def pytest_addoption(parser):
    parser.addoption("--fakepm-subprocess", action="store_true", default=None,
                     help="fakepm: run every `fakepm` fixture's server in a child process (FakePostgres("
                          "subprocess=True)) unless its marker says subprocess=False")
    parser.addini("fakepm_subprocess", type="bool", default=False,
                  help="fakepm: run the `fakepm` fixture's servers in child processes by default")


def _subprocess_default(config) -> bool:
    opt = config.getoption("fakepm_subprocess", default=None)
    if opt is not None:
        return bool(opt)
    try:
        return bool(config.getini("fakepm_subprocess"))
    except ValueError:
        return False


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "fakepm(scenario=None, verify=True, record=None, upstream=None, subprocess=False, **kwargs): configure "
        "the `fakepm` fixture (a scenario file or a list of them, whether to verify at teardown, record mode "
        "once|new|all|none and the real server to record from, whether the server runs in a child process, "
        "FakePostgres keyword arguments such as users=, tls=, "
        "max_message_size= (bytes, at most 1 GiB; default 64 MiB), authentication_timeout= (seconds), "
        "copy_keep_bytes=)",
    )


def _resolve(path: str, request) -> str:
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(os.path.dirname(str(request.node.fspath)), path)
    return candidate if os.path.exists(candidate) else path


@pytest.fixture
def fakepm(request):
    """A started FakePostgres for this test (127.0.0.1, free port); verified at teardown."""
    __tracebackhide__ = True  # a failing test or teardown shows the report, not this fixture
    marker = request.node.get_closest_marker("fakepm")
    kwargs = dict(marker.kwargs) if marker else {}
    if "subprocess" not in kwargs and _subprocess_default(request.config):
        kwargs["subprocess"] = True
    scenario = kwargs.pop("scenario", None)
    if marker and marker.args and scenario is None:
        scenario = marker.args[0]
    verify = kwargs.pop("verify", True)
    record, upstream = kwargs.pop("record", None), kwargs.pop("upstream", None)
    if record is not None:  # record from a real PostgreSQL instead of replaying (proxy room)
        from .proxy.pytest_support import maybe_record

        recording = maybe_record(scenario, record, upstream, str(request.node.fspath))
        if recording is not None:
            with recording:
                yield recording
            return
    scenarios = scenario if isinstance(scenario, (list, tuple)) else ([scenario] if scenario else [])
    pg = FakePostgres(**kwargs)
    for sc in scenarios:
        pg.load(_resolve(str(sc), request))
    pg.start()
    request.node.stash[_PG_KEY] = pg
    try:
        yield pg
        if verify:
            rep = getattr(request.node, "rep_call", None)
            if rep is None or rep.passed:
                problems = pg.problems()
                if problems:  # the report alone: no traceback through this fixture
                    pytest.fail("fakepm verification failed:\n- " + "\n- ".join(problems), pytrace=False)
    finally:
        pg.stop()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        pg = item.stash.get(_PG_KEY, None)
        if pg is not None:
            try:
                rep.sections.append(("fakepm transcript", transcript_text(pg)))
            except Exception as e:  # noqa: BLE001 - a report must never fail
                rep.sections.append(("fakepm transcript", f"(unavailable: {e})"))


def transcript_text(pg: FakePostgres, limit: int = 200) -> str:
    lines = ["journal (most recent last):"]
    for q in pg.queries[-limit:]:
        params = f" params={q.params!r}" if q.params else ""
        outcome = f" -> ERROR {q.error}" if q.error else ""
        lines.append(f"  #{q.connection} [{q.protocol}] {q.sql!r}{params} <- {q.rule or 'NO RULE MATCHED'}{outcome}")
    for conn_id, items in sorted(pg.transcripts().items()):
        lines.append(f"connection #{conn_id}:")
        lines.extend(f"  {d}> {text}" for d, text in items[-limit:])
    return "\n".join(lines)
