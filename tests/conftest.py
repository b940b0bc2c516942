"""Shared fixtures: paths into the repository and a fresh metrics registry per test."""

from __future__ import annotations

import shutil
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


def require_binary(name: str) -> str:
    """The path of a system binary the test needs; a missing one fails the test (CI must never skip it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make install-system`")
    return path
