"""The fork servers of the crash tests (``run_crash_server.py``, ``save_crash_server.py``): the client
that starts one in a fresh interpreter, and how the server ends each trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class ForkServer:
    """A fork server script of this folder in a fresh interpreter that imports this checkout's package."""

    def __init__(self, script: str):
        import napari_aleatoric

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(napari_aleatoric.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name(script))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout.readline().strip() == "ready"

    def ask(self, *fields) -> tuple[str, str]:
        """Send one tab-separated job line; returns the answer (``killed``/``finished``/``failed``, value)."""
        self.process.stdin.write("\t".join(map(str, fields)) + "\n")
        self.process.stdin.flush()
        outcome, value = self.process.stdout.readline().split()
        return outcome, value

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def finish_or_kill(pid: int, started: float, delay: float, poll_s: float) -> None:
    """Wait for the forked child ``pid`` until ``delay`` seconds after ``started`` (``time.perf_counter``),
    SIGKILL it if it is still running, and answer on stdout ``killed <s>``, ``finished <s>`` (seconds
    since ``started``) or ``failed <status>``."""
    done, status = 0, 0
    while time.perf_counter() < started + delay:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(poll_s)
    if not done:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        print(f"killed {elapsed:.6f}", flush=True)
    elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        print(f"finished {elapsed:.6f}", flush=True)
    else:
        print(f"failed {status}", flush=True)
