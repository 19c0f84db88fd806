"""newsletter: write, check, render, send and archive a weekly email newsletter."""

__version__ = "0.1.0"
