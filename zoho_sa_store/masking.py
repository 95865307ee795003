"""Showing secrets to people without showing them whole."""

from __future__ import annotations


def mask(secret: str | None) -> str:
    """Return a form of ``secret`` safe to print: a short prefix and its length.

    Zoho tokens start with a fixed ``1000.`` and then random characters, so
    the prefix kept is only long enough to tell two tokens apart by eye.
    """
    if not secret:
        return "-"
    shown = secret[:9] if len(secret) > 16 else ""
    return f"{shown}…({len(secret)} chars)"
