"""Run a memory-hungry step (a build, a release check) in a short-lived forked child.

A long-lived process that validates and builds a release keeps what the step allocated: glibc
keeps freed heap, Python keeps its arenas, RocksDB keeps a handle's caches. In gunicorn's
master that memory stays for the server's whole life, and every worker forked after it starts
with a copy (docs/performance.md, "The build's memory left in the master"). A child gives it all
back when it exits.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: after Ctrl-C, how long the child may take to end by itself before it is stopped
INTERRUPT_GRACE_SECONDS = 1.0

#: prctl's option (linux/prctl.h)
PR_SET_PDEATHSIG = 1

#: signals whose handlers a child forked from gunicorn's master must not inherit: the master's
#: handlers only queue the signal for the master's loop, which the child does not run
_MASTER_SIGNALS = ("SIGHUP", "SIGQUIT", "SIGINT", "SIGTERM", "SIGTTIN", "SIGTTOU", "SIGUSR1",
                   "SIGUSR2", "SIGWINCH", "SIGCHLD")


class ChildEnded(RuntimeError):
    """The child ended without an answer (killed, out of memory)."""


def run_in_child(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a forked child: its value, or the exception it raised, re-raised here.

    The answer comes through a pipe, not the exit status: gunicorn's master reaps every child
    it has (its SIGCHLD handler waits for any pid), so the status may be gone when we look."""
    return run_beside(function, args, lambda: None)[0]


def run_beside(function: Callable[..., T], args: tuple, here: Callable[[], U]) -> tuple[T, U]:
    """`function(*args)` in a forked child while `here()` runs in this process, on another core:
    (the child's value, here's value). The child's exception is re-raised here; if `here()`
    fails, or Ctrl-C comes, the child is stopped. The child sees this process's memory as it was
    at the fork (copy on write), so large arguments cost nothing to pass."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_answer, args=(sender, function, args, os.getpid()))
    try:
        child.start()
        sender.close()  # (inside the try: Ctrl-C may come as soon as the child exists)
        mine = here()
        succeeded, value = receiver.recv()
    except EOFError:
        raise ChildEnded(f"{getattr(function, '__name__', function)} ended without an answer "
                         "(killed, or out of memory?)") from None
    except BaseException as error:
        if child.pid is not None:
            if isinstance(error, KeyboardInterrupt):  # the child has it too and cleans up, unless it
                child.join(INTERRUPT_GRACE_SECONDS)  # is deep in native code, which sees it only when
            child.terminate()                         # it returns (a SHACL engine, a store's bulk load)
        raise
    finally:
        receiver.close()
        if child.pid is not None:
            child.join()
    if succeeded:
        return value, mine
    raise value


def die_with_parent(signum: int) -> None:
    """Linux: the kernel sends this process `signum` when the thread that forked it ends (its
    process ended, or it was stopped); elsewhere nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass


def _answer(sender, function: Callable, args: tuple, parent: int) -> None:
    for name in _MASTER_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # a child stopped by its parent (SIGTERM: nothing runs in it any more) ends its own children
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before that was set
        return
    try:
        outcome = (True, function(*args))
    except KeyboardInterrupt:  # Ctrl-C reached the whole group: the parent has it too
        return
    except Exception as error:
        outcome = (False, error)
    try:
        sender.send(outcome)
    except Exception as error:  # an answer that does not pickle
        sender.send((False, ChildEnded(f"{getattr(function, '__name__', function)}: {error!r}")))
    sender.close()
