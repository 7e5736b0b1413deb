"""Reports: HTML from Jinja2 templates, PDF from the same HTML (WeasyPrint, offline)."""
