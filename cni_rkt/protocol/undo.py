"""The ADD undo stack: every side effect registers its undo; a failure unwinds them.

    with UndoStack() as undo:
        create_veth(...)
        undo.push("remove veth", lambda: remove_link(...))
        ...
        undo.commit()        # success: forget the undos

If the block raises, the undos run newest first; each failure is logged with its label
and the rest still run; the original error propagates unchanged.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable


class UndoStack:
    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self._undos: list[tuple[str, Callable[[], object]]] = []
        self._log = log or (lambda msg: sys.stderr.write(msg + "\n"))

    def push(self, label: str, undo: Callable[[], object]) -> None:
        self._undos.append((label, undo))

    def commit(self) -> None:
        self._undos.clear()

    def unwind(self) -> None:
        while self._undos:
            label, undo = self._undos.pop()
            try:
                undo()
            except Exception:  # noqa: BLE001 - one failing undo must not stop the others
                self._log(f"undo {label!r} failed:\n{traceback.format_exc()}")

    def __enter__(self) -> UndoStack:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.unwind()
        return False
