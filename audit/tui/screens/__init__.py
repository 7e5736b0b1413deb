"""One Screen subclass per module."""
