"""HTML to PDF with WeasyPrint, offline: the URL fetcher refuses everything but data: URLs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

BLOCKED: list[str] = []
"""URLs refused during the last rendering (for the report log and tests)."""


def offline_fetcher(url: str, timeout: int = 10, ssl_context=None):
    from weasyprint.urls import default_url_fetcher

    if url.startswith("data:"):
        return default_url_fetcher(url, timeout=timeout, ssl_context=ssl_context)
    BLOCKED.append(url)
    raise ValueError(f"faceaudit renders offline; refused to fetch {url}")


def write_pdf(html: str, out: Path) -> Path:
    """Render ``html`` to ``out`` atomically (temporary file, then rename)."""
    import weasyprint

    BLOCKED.clear()
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    tmp = out.with_name(out.name + ".partial")
    weasyprint.HTML(string=html, url_fetcher=offline_fetcher, base_url=None).write_pdf(tmp)
    os.replace(tmp, out)
    return out
