"""Progress of a long command (validate, build) on stderr, phase by phase.

On a terminal, a live bar per phase (rich); otherwise (a log, a pipe, CI) one plain line when a
phase starts, one every `every` seconds while it runs, and one when it ends, so that a 1M-triple
build is never minutes of silence. ``Progress.off()`` says nothing (library callers, tests).
Use it as a context manager around the command (the live display needs starting and stopping).
"""
from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Advance = Callable[[int], None]


class Progress:
    """Plain lines on a stream; the base of the live display."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0, prefix: str = "lodpub"):
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.prefix = prefix

    @staticmethod
    def for_stderr(every: float = 10.0) -> "Progress":
        """A live display when stderr is a terminal, plain lines otherwise."""
        if sys.stderr.isatty():
            try:
                return LiveProgress(sys.stderr)
            except ImportError:  # rich is optional: plain lines then
                pass
        return Progress(sys.stderr, every)

    @staticmethod
    def off() -> "Progress":
        return _Silent()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Advance]:
        """A phase of the command; the caller calls the yielded function as units get done."""
        done = [0]
        started = time.perf_counter()
        stop = threading.Event()

        def advance(n: int = 1) -> None:
            done[0] += n

        def counted() -> str:
            return f": {done[0]}/{total}" if total else ""

        def report_periodically() -> None:
            while not stop.wait(self.every):
                self._line(f"{name}{counted()} … {time.perf_counter() - started:.0f}s")

        self._line(f"{name} …" + (f" (0/{total})" if total else ""))
        ticker = threading.Thread(target=report_periodically, daemon=True)
        ticker.start()
        try:
            yield advance
        finally:
            stop.set()
            ticker.join()
        self._line(f"{name}{counted()} done in {time.perf_counter() - started:.1f}s")

    @contextmanager
    def steps(self) -> Iterator[Callable[[str | None], None]]:
        """Consecutive phases: each call of the yielded function ends the running phase (if any)
        and starts the one it names (None: none); leaving the block ends the last."""
        running: list = []

        def start(name: str | None) -> None:
            if running:
                running.pop().__exit__(None, None, None)
            if name is None:
                return
            phase = self.phase(name)
            phase.__enter__()
            running.append(phase)

        try:
            yield start
        finally:
            if running:
                running.pop().__exit__(None, None, None)

    @contextmanager
    def steps_of_a_child(self) -> Iterator[Callable[[str | None], None]]:
        """As `steps`, for a forked child (child_process.run_beside): the yielded function, called
        in the child, sends the phase's name through a pipe; a thread here shows it."""
        receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
        stop = threading.Event()

        def show(step: Callable[[str | None], None]) -> None:
            while True:  # what was sent before the child ended is shown before stopping
                if receiver.poll(0.1):
                    try:
                        step(receiver.recv())
                    except EOFError:
                        return
                elif stop.is_set():
                    return

        with self.steps() as step:
            shower = threading.Thread(target=show, args=(step,), daemon=True)
            shower.start()
            try:
                yield sender.send
            finally:
                stop.set()
                shower.join()
                receiver.close()
                sender.close()

    def _line(self, text: str) -> None:
        print(f"{self.prefix}: {text}", file=self.stream, flush=True)


class _Silent(Progress):
    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Advance]:
        yield lambda n=1: None


class LiveProgress(Progress):
    """One rich progress bar per phase (a spinner and the elapsed time when the total is unknown)."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bars, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn)
        super().__init__(stream)
        self.bars = Bars(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), BarColumn(),
                         MofNCompleteColumn(), TimeElapsedColumn(), console=Console(file=stream),
                         # lines printed meanwhile go above the bars; stdout only when it is the terminal
                         redirect_stdout=sys.stdout.isatty())

    def __enter__(self) -> "Progress":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Advance]:
        task = self.bars.add_task(name, total=total)
        try:
            yield lambda n=1: self.bars.advance(task, n)
        finally:
            self.bars.update(task, total=total or 1, completed=total or 1)
            self.bars.stop_task(task)
