"""What every chapter's first cell does: ``from compattn.book import setup; info = setup()``.

Seeds every generator, applies the book's figure style, and prints one line saying which
profile and device this session uses.
"""
from __future__ import annotations

from .plots import setup_notebook


def setup(seed: int = 0) -> dict:
    """Seed, style and report; returns ``{"profile", "device", "torch"}``."""
    return setup_notebook(seed=seed)


__all__ = ["setup"]
