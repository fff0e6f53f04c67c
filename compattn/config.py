"""Named profiles: how big the book's live runs are on this machine.

``COMPATTN_PROFILE`` picks one: ``tiny`` (CI and the default on a CPU: every training cell
under a minute), ``small`` (a laptop: minutes), ``paper`` (a GPU: the full comparison).
"""
from __future__ import annotations

import os

PROFILES = ("tiny", "small", "paper")


def current_profile() -> str:
    """The profile named by ``COMPATTN_PROFILE`` (default ``tiny``)."""
    name = os.environ.get("COMPATTN_PROFILE", "tiny")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} in COMPATTN_PROFILE; choose one of {PROFILES}")
    return name


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    return device
