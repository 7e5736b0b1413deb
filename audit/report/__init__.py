"""Reports (HTML from Jinja2, PDF from the same HTML, offline); imports evidence, probes, rules and below."""
