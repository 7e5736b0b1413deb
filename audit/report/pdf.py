"""HTML to PDF with WeasyPrint, offline: the URL fetcher refuses everything but data: URLs.

PDFs are written as PDF/A-3b (archival; WeasyPrint embeds every font and an sRGB output intent),
which also allows the machine-readable results to travel inside the file as an attachment.
"""

from __future__ import annotations

import calendar
import logging
import os
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from audit.atomic import atomic_path

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


PDF_VARIANT = "pdf/a-3b"


_DATING = threading.Lock()


@contextmanager
def _fonts_dated(when: datetime):
    """Embedded font subsets dated ``when`` instead of now (fontTools reads SOURCE_DATE_EPOCH, the reproducible-
    builds convention), so that one page renders to the same file twice. The variable is the process's: two
    renders at once (the TUI's workers) take turns."""
    with _DATING:
        before = os.environ.get("SOURCE_DATE_EPOCH")
        # read as UTC whatever the machine's time zone (as the attachments' dates are written): a page rendered in
        # one zone and checked in another must give the same fonts
        os.environ["SOURCE_DATE_EPOCH"] = str(calendar.timegm(when.timetuple()))
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = before


def write_pdf(html: str, out: Path, attachments: dict[str, bytes] | None = None, when: datetime | None = None,
              descriptions: dict[str, str] | None = None) -> Path:
    """Render ``html`` to ``out`` atomically (temporary file, then rename).

    ``attachments`` maps file names to bytes embedded as PDF/A-3 associated files (relationship
    ``Data``): the JSON results travel inside the report they describe. They are dated ``when`` (default now):
    the same page and attachments at the same ``when`` give the same file (``attest`` relies on it).
    ``descriptions`` names what an attachment is, where its name does not say it (default: results or a table).
    """
    import weasyprint

    BLOCKED.clear()
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    when = when or datetime.now()
    described = {name: "faceaudit results (JSON) for this report" if name.endswith(".json")
                 else f"{name}: a table of this report in full (CSV)" for name in attachments or {}}
    described.update(descriptions or {})
    files = [weasyprint.Attachment(string=data, name=name, relationship="Data", description=described[name],
                                   created=when, modified=when)
             for name, data in (attachments or {}).items()]
    with atomic_path(out) as tmp, _fonts_dated(when):
        weasyprint.HTML(string=html, url_fetcher=_offline_fetcher(), base_url=None).write_pdf(
            tmp, attachments=files, pdf_variant=PDF_VARIANT)
    return out
