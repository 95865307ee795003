"""Provide the ``loopback_zoho`` pytest fixture.

Enable it from a test module or ``conftest.py`` with::

    pytest_plugins = ["zoho_sa_store.pytest_plugin"]

Settings reach the server through indirect parametrization::

    @pytest.mark.parametrize("loopback_zoho", [{"token_delay": 0.3}], indirect=True)
    def test_slow_refresh(loopback_zoho): ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zoho_sa_store.testing import LoopbackZoho

__all__ = ["loopback_zoho"]


@pytest.fixture
def loopback_zoho(request: pytest.FixtureRequest) -> Iterator[LoopbackZoho]:
    """Serve a fresh LoopbackZoho for one test and stop it afterwards."""
    settings = getattr(request, "param", None) or {}
    with LoopbackZoho(**settings) as zoho:
        yield zoho
