"""One CPU thread for small torch work (no Qt, no napari)."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def one_cpu_thread(device: torch.device | str = "cpu"):
    """Run torch's CPU operations on one thread inside the block (restored afterwards).

    For small operations (a 197×197 eigen-solve, a 32-unit perceptron) extra threads do not help,
    and on a loaded machine they wait for each other: a 197×197 ``eigvalsh`` took ~2 ms on one MKL
    thread but 0.02–1.9 s with two threads on a loaded 2-core machine. Other devices are untouched.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
