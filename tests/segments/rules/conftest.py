from __future__ import annotations

import pytest

from tests.segments.rules.world import World, WorldContext, build_world


@pytest.fixture(scope="session")
def world() -> World:
    """One small world for the whole session: the tests only read it."""
    return build_world()


@pytest.fixture(scope="session")
def ctx(world: World) -> WorldContext:
    """Stateless over the world, so hypothesis tests may share it across examples."""
    return WorldContext(world)
