"""run_in_child: what `lodpub serve` builds with, so that gunicorn's master keeps none of it;
run_beside: how a build writes two steps of a release at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from server.child_process import ChildEnded, run_beside, run_in_child
from server.config import PROJECT_ROOT
from tests.conftest import members_left_after


def test_the_value_and_the_exception_come_back():
    assert run_in_child(sum, [1, 2, 3]) == 6
    assert run_in_child(os.getpid) != os.getpid()
    with pytest.raises(ValueError, match="invalid literal"):
        run_in_child(int, "not a number")


def test_a_child_killed_outright_is_an_error_not_a_hang():
    with pytest.raises(ChildEnded, match="without an answer"):
        run_in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))


def test_beside_both_run_at_once_and_both_values_come_back(tmp_path):
    """The child and this process each wait for the other's mark: done in one wait, not two."""
    def mark_and_wait(mine: str, theirs: str) -> int:
        (tmp_path / mine).touch()
        deadline = time.monotonic() + 10
        while not (tmp_path / theirs).exists():
            assert time.monotonic() < deadline, "the other side never ran"
            time.sleep(0.01)
        return os.getpid()

    child, here = run_beside(mark_and_wait, ("child", "parent"), lambda: mark_and_wait("parent", "child"))
    assert here == os.getpid() and child not in (here, None)


def test_beside_the_childs_failure_comes_back_and_a_failure_here_stops_the_child():
    with pytest.raises(ValueError, match="invalid literal"):
        run_beside(int, ("not a number",), lambda: None)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="here failed"):
        run_beside(time.sleep, (60,), lambda: (_ for _ in ()).throw(RuntimeError("here failed")))
    assert time.monotonic() - started < 10  # the child was stopped, not waited for


@pytest.mark.parametrize("parent", ["waiting", "not yet waiting"])
def test_ctrl_c_stops_a_child_busy_where_it_cannot_see_it(parent):
    """A child in native code (a SHACL engine, a bulk load) sees SIGINT only when it returns:
    the parent stops it after a short grace instead of waiting for the whole step — also when
    Ctrl-C comes before the parent waits for the answer (here the parent is held, on purpose,
    between starting the child and waiting: a race CI once lost, the exit then waiting 60 s for
    the child)."""
    hold = textwrap.dedent("""
        from multiprocessing.connection import Connection
        close = Connection.close
        def slow_close(self):
            time.sleep(3)
            close(self)
        Connection.close = slow_close
    """) if parent == "not yet waiting" else ""
    script = textwrap.dedent("""
        import signal, sys, time
        from server.child_process import run_in_child

        def deaf_step():  # SIGINT held back, as native code would
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            print("child started", flush=True)
            time.sleep(60)

        try:
            run_in_child(deaf_step)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
    """).replace("try:\n", hold + "try:\n", 1)
    # SIGINT as a terminal leaves it: a shell ignores it in the jobs it starts in the background
    # (a CI runner may be one), and Python then installs no KeyboardInterrupt at all
    process = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout.readline() == "child started\n"
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole group
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 130 and output == "interrupted\n"
    assert time.monotonic() - started < 10  # the grace is 1 s; the step would take 60
    assert members_left_after(process.pid) == []
