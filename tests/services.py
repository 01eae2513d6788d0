"""What a test does when a real service it needs (Chromium, a Redis server)
is not installed: skip with the reason on a developer's machine, fail in CI.

CI sets ``CI=true`` and ``.ci/run`` installs every service the tests use, so
there a missing one is a broken CI machine, not a reason to pass quietly.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").lower() == "true"


def service_missing(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: every service must be installed; .ci/run installs it)", pytrace=False)
    pytest.skip(reason)
