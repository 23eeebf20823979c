"""The order manager's world (see order_world.py) as a fixture."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from order_world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.service.stop()
