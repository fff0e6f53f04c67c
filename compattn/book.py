"""What every chapter's first cell does: ``from compattn.book import setup; info = setup()``.

Seeds every generator, applies the book's figure style, and prints one line naming the
profile and device that the cells run *live* in this session use.  Chapters that show
committed results (the sweep, the scorecard, the kernels, beyond the paper) print the
profile and device of those results themselves, next to them.
"""
from __future__ import annotations

import contextlib
import io

from .plots import setup_notebook


def banner(info: dict) -> str:
    """The line ``setup()`` prints, e.g. ``Live cells: profile tiny, device cpu, torch 2.13.0``."""
    return (f"Live cells: profile {info['profile']}, device {info['device']}, "
            f"torch {info['torch']}")


def setup(seed: int = 0) -> dict:
    """Seed, style and report; returns ``{"profile", "device", "torch"}``."""
    with contextlib.redirect_stdout(io.StringIO()):
        info = setup_notebook(seed=seed)
    print(banner(info))
    return info


__all__ = ["banner", "setup"]
