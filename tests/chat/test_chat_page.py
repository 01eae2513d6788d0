"""The chat page: self-contained, with the ids a browser test drives, and a
Content-Security-Policy that matches its inline script and style."""

from __future__ import annotations

import base64
import hashlib
import html.parser
import re

from netkit.chat.page import content_security_policy, page_html, page_response_headers


class PageParser(html.parser.HTMLParser):
    """Collects element ids, attribute values and the text of inline blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.attributes: list[tuple[str, str, str]] = []
        self.blocks: dict[str, list[str]] = {"script": [], "style": []}
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            if name == "id" and value:
                self.ids[value] = tag
        if tag in self.blocks:
            self._inside = tag
            self.blocks[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside is not None:
            self.blocks[self._inside][-1] += data


def parsed() -> PageParser:
    parser = PageParser()
    parser.feed(page_html().decode("utf-8"))
    parser.close()
    return parser


def test_the_ids_a_browser_test_relies_on() -> None:
    ids = parsed().ids
    assert ids["nick"] == "input"
    assert ids["join"] == "button"
    assert ids["input"] == "textarea"
    assert ids["send"] == "button"
    assert ids["messages"] == "ol"
    script = parsed().blocks["script"][0]
    # Each chat message is an element of class "msg" carrying the sender's nickname.
    assert '"msg mine" : "msg"' in script and "dataset.nick = message.nick" in script


def test_no_external_assets() -> None:
    parser = parsed()
    for tag, name, value in parser.attributes:
        if name in ("src", "href", "action", "srcset", "poster"):
            assert value.startswith("data:"), (tag, name, value)
    text = page_html().decode("utf-8")
    assert "@import" not in text and "url(" not in text
    assert not re.search(r"https?://", text)


def test_user_data_is_never_parsed_as_html() -> None:
    script = parsed().blocks["script"][0]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script
    assert "textContent" in script


def test_readable_on_a_phone() -> None:
    text = page_html().decode("utf-8")
    assert 'name="viewport" content="width=device-width' in text
    assert "min-height: 44px" in parsed().blocks["style"][0]  # tap targets


def test_csp_allows_exactly_the_inline_blocks() -> None:
    parser = parsed()
    policy = dict(directive.split(" ", 1) for directive in content_security_policy().split("; "))
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        (block,) = parser.blocks[tag]
        digest = base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode("ascii")
        assert policy[directive] == f"'sha256-{digest}'"
    assert policy["default-src"] == "'none'"
    assert "'unsafe-inline'" not in content_security_policy()


def test_response_headers_describe_the_body() -> None:
    fields = dict(page_response_headers())
    assert fields["Content-Length"] == str(len(page_html()))
    assert fields["Content-Type"] == "text/html; charset=utf-8"
    assert fields["Content-Security-Policy"] == content_security_policy()
