"""A call run in a thread while the caller goes on, its outcome collected with `wait`.

For steps that mostly wait outside Python (the kernel deleting a veth, iptables-restore
running): the GIL is free meanwhile, so the caller's own steps overlap with them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundCall:
    def __init__(self, name: str, function: Callable[[], object]) -> None:
        self._function = function
        self._result: object = None
        self._error: BaseException | None = None
        # Thread.join is not used to wait: interrupted by a signal handler's exception, it
        # can mark a thread that is still running as stopped (CPython's bpo-45274 handling).
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._function()
        except BaseException as exc:  # noqa: BLE001 - handed to wait()
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self) -> object:
        """The call's return value, once it has finished; what it raised is raised here.

        Finishes waiting even when interrupted (SIGTERM's SystemExit in a worker's child):
        an undo must not run while the call it undoes is still at work."""
        interrupted: BaseException | None = None
        while not self._done.is_set():
            try:
                self._done.wait()
            except BaseException as exc:  # noqa: BLE001 - raised once the call is done
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        self._thread.join()  # its last instructions: a process may not setns while it runs
        if self._error is not None:
            raise self._error
        return self._result


# --- work that may finish after the reply --------------------------------------------------
# A worker's child sends the caller its reply, then serves no one else until this work is
# done: the caller's runtime goes on meanwhile. A process that ends when it has replied
# (the in-process path) has no use for it: its exit would wait for the work anyway.

_after_reply: list[Callable[[], object]] | None = None


def allow_finishing_after_reply() -> None:
    """Called by the worker's child before it runs a request."""
    global _after_reply
    _after_reply = []


def finishing_after_reply_allowed() -> bool:
    return _after_reply is not None


def finish_after_reply(step: Callable[[], object]) -> None:
    """Run `step` once the reply is sent (now, where that is not allowed)."""
    if _after_reply is None:
        step()
    else:
        _after_reply.append(step)


def finish_what_waited_for_the_reply() -> None:
    """Called by the worker's child once the reply is sent: every step, in order; the
    first error is raised once all have run (the caller has its reply already)."""
    global _after_reply
    steps, _after_reply = _after_reply or [], None
    error: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - raised after the other steps ran
            error = error or exc
    if error is not None:
        raise error
