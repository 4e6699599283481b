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
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._function()
        except BaseException as exc:  # noqa: BLE001 - handed to wait()
            self._error = exc

    def wait(self) -> object:
        """The call's return value, once it has finished; what it raised is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result
