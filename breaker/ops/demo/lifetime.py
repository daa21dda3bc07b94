"""No process left behind: a child of the demo exits when the process that started it is gone."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux for SIGTERM when the parent dies (best effort), and exit now if it already has.

    Only for children started from their parent's main thread: PR_SET_PDEATHSIG fires when the *thread*
    that forked the child ends, so a child of a Streamlit script thread polls :func:`parent_alive` instead.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if not parent_alive(parent_pid):
        raise SystemExit(0)


def parent_alive(parent_pid: int) -> bool:
    """An orphan is re-parented (to init or a subreaper), so its parent pid changes."""
    return os.getppid() == parent_pid


def _exit(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not interrupt the unwinding
    raise SystemExit(0)


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so ``finally`` blocks clean up (and stop the process's own children).

    Once the interpreter is exiting anyway, SIGTERM is ignored: raised inside an atexit callback (logging's
    shutdown, say) SystemExit only prints a traceback (seen on Ctrl-C of ``make demo``). Callbacks run last
    registered first, so this one runs before those registered at import time."""
    signal.signal(signal.SIGTERM, _exit)
    atexit.register(signal.signal, signal.SIGTERM, signal.SIG_IGN)
