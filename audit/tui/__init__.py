"""Textual TUI over audit.api (runs, live audits, findings, comparison, export); the top floor: may import below."""
