"""The layering promises that README and DESIGN make, checked against the code.

The sans-I/O modules (the framer, the HTTP head parser, the WebSocket codec)
can be imported and used with any I/O: importing one loads neither
``socket`` nor ``selectors`` nor netkit's loop.  Each check runs in a fresh
interpreter, since this one has long loaded everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SANS_IO_MODULES = ["netkit.errors", "netkit.framing", "netkit.http"]

# What a sans-I/O module must not bring in, directly or through a package's __init__.
FORBIDDEN = ["socket", "selectors", "ssl", "netkit.loop", "netkit.transports", "netkit.tasks", "netkit.futures", "netkit.streams"]


def modules_loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``import module``."""
    code = f"import sys; before = set(sys.modules); import {module}; print('\\n'.join(sorted(set(sys.modules) - before)))"
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("module", SANS_IO_MODULES)
def test_a_sans_io_module_loads_no_socket_and_no_loop(module: str) -> None:
    loaded = modules_loaded_by(module)
    assert module in loaded
    assert not [name for name in FORBIDDEN if name in loaded]


def test_the_package_still_offers_every_public_name() -> None:
    import netkit

    missing = [name for name in netkit.__all__ if getattr(netkit, name, None) is None]
    assert not missing
    assert set(netkit.__all__) <= set(dir(netkit))


def test_an_unknown_name_is_an_attribute_error() -> None:
    import netkit

    with pytest.raises(AttributeError, match="no attribute 'EvntLoop'"):
        netkit.EvntLoop  # noqa: B018
