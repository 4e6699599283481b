"""Fixtures of the side-by-side tests against Debian's Go plugins."""

from __future__ import annotations

import pytest
from conftest import GO_PLUGIN_DIR
from go_sides import Side


@pytest.fixture
def sides(plugin_dir, tmp_path) -> list[Side]:
    """Go's side, then ours, each in its own sandbox with a fresh data dir under tmp_path."""
    made = []
    try:
        for name, directory in (("go", GO_PLUGIN_DIR), ("ours", plugin_dir)):
            data_dir = tmp_path / name
            data_dir.mkdir()
            made.append(Side(name, directory, str(data_dir)))
        yield made
    finally:
        for side in made:
            side.sandbox.close()
