from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from node.collections import Collections

from .fake_group import FakeGroups, FakeNet


@pytest.fixture
def fake_groups() -> FakeGroups:
    return FakeGroups()


@pytest.fixture
async def fake_nodes(fake_groups: FakeGroups) -> AsyncIterator[Callable[[], Collections]]:
    """Make ``Collections`` of fake nodes sharing ``fake_groups``; all closed at the end."""
    made: list[Collections] = []

    def make() -> Collections:
        collections = Collections(FakeNet(fake_groups, name=f"fake-{len(made)}"))
        made.append(collections)
        return collections

    yield make
    for collections in made:
        await collections.close()
