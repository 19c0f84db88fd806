"""newsletter: write, check, render, send and archive a weekly email newsletter."""

__version__ = "0.2.0"
