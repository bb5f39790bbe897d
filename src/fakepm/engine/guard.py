"""The guard: a tiny child process that runs one postmaster and makes sure it never outlives us.

Run as a script (``python -I -S guard.py CONFIG_JSON``; standard library only, so it starts
in tens of milliseconds and imports nothing of fakepm). The test process holds the write end
of the guard's stdin and never writes to it: when that process ends -- exit, exception,
SIGKILL, OOM kill -- the kernel closes the pipe, the guard reads EOF and fast-stops the
postmaster (SIGINT; SIGQUIT, then SIGKILL after bounded waits). ``Engine.stop()`` closes the
pipe too: one way to stop, whatever the cause.

Belt and braces: the postmaster gets PR_SET_PDEATHSIG=SIGQUIT (immediate shutdown if the guard
itself is SIGKILLed), and the guard is a child subreaper, so backends orphaned by a killed
postmaster are re-parented to it and killed too.

Lines on stdout: ``pid N`` once the postmaster is spawned, ``ready`` when postmaster.pid says
so, ``exited RC`` if it ends by itself, ``stopped`` at the end.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, arg: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe still does the work
        pass


def _say(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # the test process is gone: nobody to tell
        pass


def _is_ready(datadir: str, pid: int) -> bool:
    """postmaster.pid: line 1 is the PID, line 8 the status ("ready" once it accepts connections)."""
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            lines = f.read().split("\n")
    except OSError:
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _kill_orphans() -> None:
    """SIGKILL and reap every remaining child (orphaned backends re-parented to us, the subreaper)."""
    me = str(os.getpid())
    for _ in range(3):  # bounded: a few passes catch children forked while we looked
        found = False
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = stat.rpartition(")")[2].split()[1]
            if ppid == me:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.01)
        if not found:
            return


def _stop(proc: subprocess.Popen, stop_timeout: float) -> None:
    # SIGINT: fast shutdown (clients disconnected, one cheap checkpoint with fsync off);
    # SIGQUIT: immediate shutdown; SIGKILL: last resort. Every wait bounded.
    for sig, wait in ((signal.SIGINT, stop_timeout), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            break
        try:
            proc.send_signal(sig)
        except OSError:
            pass
        if _wait(proc, wait):
            break
    _kill_orphans()


def main() -> int:
    cfg = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal is the test process's business
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    uid, gid = cfg.get("uid"), cfg.get("gid")

    def child_setup() -> None:  # runs after setuid in the child: PDEATHSIG survives it
        _prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)

    log = open(cfg["log"], "ab")
    try:
        proc = subprocess.Popen(cfg["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=cfg["env"], cwd=cfg["datadir"], user=uid, group=gid,
                                extra_groups=[] if uid is not None else None, preexec_fn=child_setup)
    except OSError as e:
        _say(f"failed {e}")
        return 1
    finally:
        log.close()
    _say(f"pid {proc.pid}")
    ready = False
    deadline = time.monotonic() + float(cfg.get("ready_timeout", 60))
    stdin = sys.stdin.fileno()
    try:
        while not stopping:
            if proc.poll() is not None:
                _say(f"exited {proc.returncode}")
                break
            if not ready:
                if _is_ready(cfg["datadir"], proc.pid):
                    ready = True
                    _say("ready")
                elif time.monotonic() > deadline:
                    _say("timeout")
                    break
            r, _, _ = select.select([stdin], [], [], 0.01 if not ready else 0.5)
            if r:
                try:
                    data = os.read(stdin, 4096)
                except OSError:
                    data = b""
                if not data or b"stop" in data:
                    break  # EOF: the test process is gone or stopping us
    finally:
        _stop(proc, float(cfg.get("stop_timeout", 10)))
        for path in cfg.get("remove", ()):
            shutil.rmtree(path, ignore_errors=True)
        _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
