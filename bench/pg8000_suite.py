"""pg8000's own test suite three ways: directly against PostgreSQL 15 (A), through `fakepm record` (B),
against `fakepm serve` of that recording, unedited (C). Writes the three numbers and the wall
times to bench/RESULTS.md (issue 13's "done means").

    python bench/pg8000_suite.py                    # the whole suite pg8000's CI runs (no auth/ dirs)
    python bench/pg8000_suite.py --tests DIR        # pg8000's test/ directory from elsewhere
    python bench/pg8000_suite.py -k native          # a subset (passed on to pytest)
    python bench/pg8000_suite.py --no-write         # print, do not touch RESULTS.md

The tests are pg8000's own at the installed version's tag: from a clone of its repository
(--git DIR: `git archive <version> test`), else from its source distribution, which carries the
tag's test/ directory (`pip download --no-binary :all: pg8000==X`, cached in ~/.cache/fakepm-bench/;
pg8000 moved from GitHub to Codeberg after 1.31.4, so a GitHub snapshot may lack the tag), or
--tests DIR. They need pytest-mock, pytest-benchmark and pytz (`pip install -e ".[bench]"`).

The numbers:
1. A: tests passing directly; B: tests passing through the recorder; every test of A must be in B;
2. C: tests passing on replay, of those passing in B (at least 95% is the goal);
3. the recorder's wall time against the direct run's (the goal: within 1.5x).
Each run's per-test outcome is kept (--keep DIR) as JUnit XML; the tests that pass in B and
fail in C are printed with their first error line.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from realpg import real_postgres  # noqa: E402

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "fakepm-bench")
# pg8000's CI (its .github/workflows/test.yml, main job): everything but the auth/ directories
# (they need a server configured per method) and test_readme.py
IGNORE = ("test/dbapi/auth", "test/legacy/auth", "test/native/auth", "test/test_readme.py")
MARK_BEGIN = "<!-- pg8000-suite:begin -->"
MARK_END = "<!-- pg8000-suite:end -->"


def pg8000_version() -> str:
    from importlib.metadata import version

    return version("pg8000")


def tests_from_git(repo: str, version: str) -> str:
    """test/ of a pg8000 clone at the tag `version` (into the cache)."""
    dest = os.path.join(CACHE, f"pg8000-{version}-git")
    if not os.path.isdir(os.path.join(dest, "test")):
        os.makedirs(dest, exist_ok=True)
        archive = subprocess.run(["git", "-C", repo, "archive", version, "test"], check=True, capture_output=True,
                                 timeout=120).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tf:
            tf.extractall(dest, filter="data")
    return dest


def fetch_tests(version: str) -> str:
    """pg8000's source tree (holding test/) at `version`, from its sdist (cached)."""
    dest = os.path.join(CACHE, f"pg8000-{version}")
    if os.path.isdir(os.path.join(dest, "test")):
        return dest
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"pg8000=={version}", "-d", tmp], check=True, timeout=300)
        sdist = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")][0]
        with tarfile.open(os.path.join(tmp, sdist)) as tf:
            tf.extractall(tmp, filter="data")
        shutil.move(os.path.join(tmp, f"pg8000-{version}"), dest)
    return dest


def outcomes(xml_path: str) -> dict[str, tuple[str, str]]:
    """test id -> (passed | failed | error | skipped, first line of the message)."""
    out: dict[str, tuple[str, str]] = {}
    if not os.path.exists(xml_path):
        return out
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        status, msg = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed"}.get(child.tag, child.tag)
                msg = (child.get("message") or "").strip().splitlines()[0][:200] if child.get("message") else ""
                break
        if name in out and out[name][0] != "passed":
            continue  # an error in teardown after a pass: keep the worse
        out[name] = (status, msg)
    return out


def run_pytest(src: str, port: int, xml: str, extra: list[str], timeout: float) -> float:
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres", PGPASSWORD="pw")
    env.pop("PGDATABASE", None)
    targets = [] if any(not x.startswith("-") for x in extra) else ["test"]  # files or directories given
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:fakepm", "-p", "no:cacheprovider", "-o",
           "addopts=", "-o", "timeout=60", f"--junitxml={xml}", *targets, *[f"--ignore={p}" for p in IGNORE],
           *extra]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=src, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    return time.monotonic() - t0


class Fakepm:
    """`fakepm <args>` in a child process; its first stdout line is the DSN."""

    def __init__(self, *args: str, log: str):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "fakepm.cli", *args], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=ROOT)
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(f"fakepm {' '.join(args)} exited with {self.proc.returncode} (see {log})")
        self.dsn = line
        self.port = int(re.search(r":(\d+)/", line).group(1))

    def stop(self, timeout: float = 600) -> float:
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return time.monotonic() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", help="pg8000's source tree (with test/); default: its sdist at the installed version")
    ap.add_argument("--git", metavar="REPO", help="a clone of pg8000's repository: its test/ at the installed version's tag")
    ap.add_argument("--keep", help="directory for the recording, the JUnit XML files and the logs")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one pytest run may take")
    ap.add_argument("pytest_args", nargs="*", help="more pytest arguments (-k EXPR, file paths ...)")
    args, extra = ap.parse_known_args(argv)
    extra = [*args.pytest_args, *extra]
    version = pg8000_version()
    src = args.tests or (tests_from_git(args.git, version) if args.git else fetch_tests(version))
    work = args.keep or tempfile.mkdtemp(prefix="fakepm-pg8000-")
    res = measure(src, work, extra, args.timeout)
    print("\n".join(res["lines"]))
    for name in res["lost_b"]:
        print(f"  lost through the recorder: {name}: {res['b'].get(name, ('missing', ''))}")
    for name in res["lost_c"]:
        print(f"  lost on replay: {name}: {res['c'].get(name, ('missing', ''))}")
    print(f"# files in {work}")
    if not args.no_write and not extra:
        write_results(res["lines"], res["lost_b"], res["lost_c"], res["c"])
    return 0 if not res["lost_b"] and res["ratio_c"] >= 0.95 else 1


def measure(src: str, work: str, extra: list, timeout: float = 1800) -> dict:
    """Run the three ways; the numbers, the lost tests and the per-test outcomes."""
    version = pg8000_version()
    os.makedirs(work, exist_ok=True)
    rec_file = os.path.join(work, "pg8000.yaml")
    if os.path.exists(rec_file):
        os.remove(rec_file)
    with real_postgres(version="15") as pg:
        pg.psql("CREATE EXTENSION hstore")
        t_a = run_pytest(src, pg.port, os.path.join(work, "a.xml"), extra, timeout)
        # B: a fresh server, so the recording starts from the state A started from
    with real_postgres(version="15") as pg:
        pg.psql("CREATE EXTENSION hstore")
        rec = Fakepm("record", "--upstream", f"postgresql://postgres@127.0.0.1:{pg.port}/postgres", "--out",
                     rec_file, "--mode", "all", log=os.path.join(work, "record.log"))
        try:
            t_b = run_pytest(src, rec.port, os.path.join(work, "b.xml"), extra, timeout)
        finally:
            t_save = rec.stop()
    size = os.path.getsize(rec_file) if os.path.exists(rec_file) else 0
    t0 = time.monotonic()
    srv = Fakepm("serve", rec_file, "-q", log=os.path.join(work, "serve.log"))
    t_load = time.monotonic() - t0
    try:
        t_c = run_pytest(src, srv.port, os.path.join(work, "c.xml"), extra, timeout)
    finally:
        srv.stop(30)
    a, b, c = (outcomes(os.path.join(work, f"{x}.xml")) for x in "abc")
    pa = {k for k, v in a.items() if v[0] == "passed"}
    pb = {k for k, v in b.items() if v[0] == "passed"}
    pc = {k for k, v in c.items() if v[0] == "passed"}
    lost_b = sorted(pa - pb)
    lost_c = sorted(pb - pc)
    ratio_c = len(pb & pc) / len(pb) if pb else 0.0
    lines = [
        f"pg8000 {version}, {len(a)} tests ({' '.join(extra) or 'the suite pg8000 CI runs'}), PostgreSQL 15",
        f"A direct:         {len(pa)} passed in {t_a:.1f} s",
        f"B through record: {len(pb)} passed in {t_b:.1f} s ({t_b / t_a:.2f}x of A); "
        f"{len(pa) - len(lost_b)} of A's {len(pa)} pass (writing the file: {t_save:.1f} s, {size / 1e6:.1f} MB)",
        f"C replay:         {len(pb & pc)} of B's {len(pb)} pass ({100 * ratio_c:.1f}%) in {t_c:.1f} s "
        f"(loading: {t_load:.1f} s)",
    ]
    return {"lines": lines, "lost_b": lost_b, "lost_c": lost_c, "a": a, "b": b, "c": c, "passed": (pa, pb, pb & pc),
            "ratio_c": ratio_c, "times": (t_a, t_b, t_c)}


def write_results(lines, lost_b, lost_c, c) -> None:
    path = os.path.join(HERE, "RESULTS.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    body = [MARK_BEGIN, "## pg8000's own test suite: direct, through `fakepm record`, replayed (issue 13)", "",
            f"Run {time.strftime('%Y-%m-%d')} by `python bench/pg8000_suite.py` on this machine:", "", "```",
            *lines, "```", ""]
    if lost_c:
        body += ["Tests passing through the recorder that fail on replay:", ""]
        body += [f"- `{n}`: {c.get(n, ('missing', ''))[1] or c.get(n, ('missing', ''))[0]}" for n in lost_c]
        body.append("")
    body.append(MARK_END)
    block = "\n".join(body)
    if MARK_BEGIN in text:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
