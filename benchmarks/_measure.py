"""Run a command and measure its wall time and the peak memory of its whole process tree.

A sampler thread polls the process and all its descendants every ``interval`` seconds (20 ms by
default) and sums their resident memory. Two sums are kept:

* RSS — resident set size; pages shared between processes (forked workers, shared libraries)
  are counted once per process, so it over-states pools of workers;
* PSS — proportional set size (``psutil.Process.memory_full_info().pss``, Linux): each shared
  page is split between the processes sharing it, so the sum is the tree's real footprint.

``peak_bytes`` is the PSS peak where the kernel provides it, else the RSS peak. Sampling misses
spikes shorter than the interval; for the multi-second calls measured here that is negligible.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

__all__ = ["Measurement", "measure"]


@dataclass
class Measurement:
    """What :func:`measure` observed.

    Attributes:
        command: The command that ran.
        returncode: Its exit status.
        wall_s: Wall time from start to exit, seconds.
        peak_rss_bytes: Peak of the summed RSS of the process tree.
        peak_pss_bytes: Peak of the summed PSS, or None where PSS cannot be read.
        peak_processes: Largest number of processes seen at once in the tree.
        samples: Number of memory samples taken.
        stdout: Captured standard output (text).
        stderr: Captured standard error (text).
    """

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_bytes: int
    peak_pss_bytes: int | None
    peak_processes: int
    samples: int
    stdout: str
    stderr: str

    @property
    def peak_bytes(self) -> int:
        """The PSS peak when available, else the RSS peak."""
        return self.peak_pss_bytes if self.peak_pss_bytes is not None else self.peak_rss_bytes

    @property
    def memory_kind(self) -> str:
        return "PSS" if self.peak_pss_bytes is not None else "RSS"


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.root = psutil.Process(pid)
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_pss: int | None = 0
        self.peak_processes = 0
        self.samples = 0

    def sample(self) -> None:
        rss = pss = 0
        processes = _tree(self.root)
        for proc in processes:
            try:
                if self.peak_pss is not None:
                    try:
                        info = proc.memory_full_info()
                    except (psutil.AccessDenied, AttributeError):
                        self.peak_pss = None  # no PSS here: keep RSS only from now on
                        info = proc.memory_info()
                else:
                    info = proc.memory_info()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            rss += info.rss
            pss += getattr(info, "pss", 0)
        self.peak_rss = max(self.peak_rss, rss)
        if self.peak_pss is not None:
            self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(processes))
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)


def measure(command: Sequence[str], *, env: Mapping[str, str] | None = None,
            cwd: str | None = None, interval: float = 0.02,
            timeout: float | None = None) -> Measurement:
    """Run ``command`` (no shell) and measure its wall time and process-tree peak memory.

    Args:
        command: Program and arguments.
        env: Environment of the child (default: this process's).
        cwd: Working directory of the child.
        interval: Seconds between memory samples.
        timeout: Kill the tree and raise ``subprocess.TimeoutExpired`` after this many seconds.

    Returns:
        A :class:`Measurement` (also when the command fails: check ``returncode``).
    """
    command = [os.fspath(c) for c in command]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _Sampler(proc.pid, interval)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for child in _tree(sampler.root)[1:]:
            try:
                child.kill()
            except psutil.Error:
                pass
        proc.kill()
        proc.communicate()
        raise
    finally:
        wall = time.perf_counter() - start
        sampler.stop_event.set()
        sampler.join()
    return Measurement(command=command, returncode=proc.returncode, wall_s=wall,
                       peak_rss_bytes=sampler.peak_rss, peak_pss_bytes=sampler.peak_pss,
                       peak_processes=sampler.peak_processes, samples=sampler.samples,
                       stdout=stdout, stderr=stderr)
