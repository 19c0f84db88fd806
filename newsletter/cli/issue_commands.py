"""Commands for composing, checking and building issues."""

COMMANDS: list = []
