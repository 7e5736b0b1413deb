"""The TUI's screens, one Screen subclass per module; they work through audit.api, like the CLI."""
