"""Textual TUI over audit.api: runs, new audits with live progress, findings, comparison, export."""
