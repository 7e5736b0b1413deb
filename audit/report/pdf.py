"""HTML to PDF with WeasyPrint, offline: the URL fetcher refuses everything but data: URLs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

BLOCKED: list[str] = []
"""URLs refused during the last rendering (for the report log and tests)."""


def _offline_fetcher():
    from weasyprint.urls import URLFetcher

    class OfflineFetcher(URLFetcher):
        """Serves data: URLs only; every other URL is recorded in BLOCKED and refused."""

        def __init__(self):
            super().__init__(allowed_protocols={"data"}, allow_redirects=False)

        def fetch(self, url, headers=None):
            if not url.startswith("data:"):
                BLOCKED.append(url)
                raise ValueError(f"faceaudit renders offline; refused to fetch {url}")
            return super().fetch(url, headers)

    return OfflineFetcher()


def write_pdf(html: str, out: Path) -> Path:
    """Render ``html`` to ``out`` atomically (temporary file, then rename)."""
    import weasyprint

    BLOCKED.clear()
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    tmp = out.with_name(out.name + ".partial")
    weasyprint.HTML(string=html, url_fetcher=_offline_fetcher(), base_url=None).write_pdf(tmp)
    os.replace(tmp, out)
    return out
