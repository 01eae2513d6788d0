"""The chat's browser page: one self-contained HTML file shipped with netkit.

``page.html`` beside this module holds the HTML, CSS and JavaScript inline,
with no external assets, so the page works offline and from an install.
:func:`page_response_headers` adds a Content-Security-Policy that allows
exactly that inline script and style (by their SHA-256 hashes) and WebSocket
connections, so even a bug in the page could not load or run anything else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import re

__all__ = ["page_html", "content_security_policy", "page_response_headers"]

_INLINE_BLOCK = r"<{tag}>(.*?)</{tag}>"


@functools.cache
def page_html() -> bytes:
    """The page, as UTF-8 bytes (read once from the package)."""
    return importlib.resources.files(__package__).joinpath("page.html").read_bytes()


def _hashes(tag: str) -> str:
    """CSP source expressions for every inline ``<tag>`` block of the page."""
    text = page_html().decode("utf-8")
    blocks = re.findall(_INLINE_BLOCK.format(tag=tag), text, flags=re.DOTALL)
    if not blocks:
        raise RuntimeError(f"the chat page has no inline <{tag}>")
    digests = [base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode("ascii") for block in blocks]
    return " ".join(f"'sha256-{digest}'" for digest in digests)


@functools.cache
def content_security_policy() -> str:
    """The page's Content-Security-Policy: its own inline script and style,
    WebSocket connections, and nothing else."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hashes('script')}",
            f"style-src {_hashes('style')}",
            # 'self' covers ws(s) to the same host in current browsers; the
            # schemes keep older ones working behind a proxy on another port.
            "connect-src 'self' ws: wss:",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page_response_headers() -> list[tuple[str, str]]:
    """HTTP header fields to serve the page with."""
    return [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page_html()))),
        ("Content-Security-Policy", content_security_policy()),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        # The page is small and changes with netkit: revalidate every time.
        ("Cache-Control", "no-cache"),
    ]
