"""Commands for this area (filled in by its issue)."""

COMMANDS: list = []
