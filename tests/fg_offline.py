"""What a page would fetch: every URL an HTML page names for the browser to load (or to open), with those a
page that reads offline may name (its own anchors, `data:` URIs, relative paths beside it) left out."""
from __future__ import annotations

import re
from html.parser import HTMLParser

#: attributes whose value is a URL the browser loads or opens
URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background", "manifest",
                  "xlink:href"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRIBUTES:
                self.urls += [v.strip().split(" ")[0] for v in value.split(",")] if name == "srcset" else [value]
            elif name == "style":
                self.urls += [a or b for a, b in _CSS_URL.findall(value)]

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += [a or b for a, b in _CSS_URL.findall(data)]


def page_urls(html: str) -> tuple[list[str], list[str]]:
    """(every URL the page names, every tag it opens)."""
    c = _Collector()
    c.feed(html)
    c.close()
    return c.urls, c.tags


def external_references(html: str) -> list[str]:
    """The URLs of `html` that leave the page's folder: any scheme but `data:`, or protocol-relative."""
    out = []
    for url in page_urls(html)[0]:
        u = url.strip()
        if not u or u.startswith("#") or u.lower().startswith("data:"):
            continue
        if u.startswith("//") or re.match(r"^[a-z][a-z0-9+.-]*:", u, re.I) or u.startswith("/"):
            out.append(u)
    return out
