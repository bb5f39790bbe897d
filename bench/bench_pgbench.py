"""pgbench against fakepm (own process) and PostgreSQL: `SELECT 1` and a 100-row query,
-M simple/extended/prepared, -c 1/8/32 (-j 2 above one client), and -C (connect per transaction).

    .venv/bin/python bench/bench_pgbench.py [--quick]

Each cell is `pgbench -n -f SCRIPT -M MODE -c C -j J -T SECONDS`, repeated; fakepm and
PostgreSQL alternate cell by cell, so a noisy neighbour hits both.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

from common import HUNDRED_SQL, FakeServer, Stat, bench_main, real_server, table, verdict

SCRIPTS = {"SELECT 1": "SELECT 1;\n", "100 rows": HUNDRED_SQL + ";\n"}
# (script, mode, clients, connect-per-transaction, target ratio or None)
FULL = ([("SELECT 1", mode, c, False, {1: 0.5, 8: 0.3}.get(c)) for c in (1, 8, 32)
         for mode in ("simple", "extended", "prepared")]
        + [("100 rows", mode, c, False, 0.5 if c == 1 else None) for c in (1, 8)
           for mode in ("simple", "extended", "prepared")]
        + [("SELECT 1", "simple", c, True, 2.0) for c in (1, 8)])
QUICK = [("SELECT 1", "simple", 1, False, 0.5), ("100 rows", "prepared", 1, False, 0.5),
         ("SELECT 1", "simple", 1, True, 2.0)]


def pgbench(port: int, script: str, mode: str, clients: int, connect: bool, seconds: int) -> tuple[float, float]:
    """(tps, average latency in ms) of one pgbench run."""
    cmd = ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-f", script, "-M", mode,
           "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)]
    if connect:
        cmd.append("-C")
    r = subprocess.run(cmd + ["postgres"], capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    tps = float(re.search(r"^tps = ([\d.]+)", r.stdout, re.M).group(1))
    lat = float(re.search(r"latency average = ([\d.]+) ms", r.stdout).group(1))
    return tps, lat


def run(quick: bool) -> list[str]:
    cells, seconds, reps = (QUICK, 1, 1) if quick else (FULL, 2, 3)
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp, FakeServer() as fake, real_server() as real:
        files = {}
        for name, sql in SCRIPTS.items():
            files[name] = os.path.join(tmp, name.replace(" ", "_") + ".sql")
            with open(files[name], "w") as f:
                f.write(sql)
        for _ in range(reps):
            for cell in cells:
                script, mode, clients, connect, _target = cell
                for label, port in (("fakepm", fake.port), ("PostgreSQL", real.port)):
                    res.setdefault((cell, label), []).append(
                        pgbench(port, files[script], mode, clients, connect, seconds))
                fake.cmd("clear")  # the journal is bounded anyway; keep it small between cells
    rows, misses = [], []
    for cell in cells:
        script, mode, clients, connect, target = cell
        f = Stat([t for t, _ in res[(cell, "fakepm")]])
        r = Stat([t for t, _ in res[(cell, "PostgreSQL")]])
        flat = Stat([lat for _, lat in res[(cell, "fakepm")]]).median
        rlat = Stat([lat for _, lat in res[(cell, "PostgreSQL")]]).median
        ratio = f.median / r.median
        mark = "" if target is None else f"≥{target}x: {verdict(ratio, target)}"
        if target is not None and ratio < target:
            misses.append(f"{script} -M {mode} -c {clients}{' -C' if connect else ''}")
        rows.append([script, mode, clients, "yes" if connect else "", f.fmt(), f"{flat:.3f}", r.fmt(),
                     f"{rlat:.3f}", f"{ratio:.2f}x", mark])
    return [
        "## 4. pgbench",
        "",
        f"`pgbench -n -f SCRIPT -M MODE -c C -j min(C,2) -T {seconds} [-C]`, {reps} runs per cell; "
        f"the 100-row script is `{HUNDRED_SQL}` (fakepm answers it from a rule with 100 static rows).",
        "",
        *table(["script", "-M", "-c", "-C", "fakepm tps: median (min-max)", "fakepm latency ms",
                "PostgreSQL tps", "PostgreSQL latency ms", "fakepm/PostgreSQL", "target"], rows),
        "Missed: " + (", ".join(misses) if misses else "none") + ".",
        "",
    ]


if __name__ == "__main__":
    bench_main(run, __doc__)
