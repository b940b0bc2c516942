"""Shared fixtures: paths into the repository and a fresh metrics registry per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()
