"""Command-line options of the upstream seam: where upstream MDM is and which CLIP weights it uses.

``add_upstream_options(parser)`` adds an ``upstream`` group (``--mdm_root``, ``--clip_weights``)
built from ``UpstreamSettings``; ``UpstreamSettings.from_args(args)`` validates the values and
makes paths absolute against the current directory, before anything changes directory.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from mdm_kinemic.flags import add_dataclass_options

__all__ = ["UpstreamSettings", "add_upstream_options"]


@dataclass
class UpstreamSettings:
    """Where upstream MDM lives and which CLIP weights its text encoder loads."""

    mdm_root: str | None = field(
        default=None,
        metadata={
            "help": ("upstream MDM checkout (default: $MDM_ROOT, else the submodule "
                     "third_party/motion-diffusion-model)")
        },
    )
    clip_weights: str | None = field(
        default=None,
        metadata={
            "help": ("CLIP ViT-B/32 weights file, or 'random' for dry runs (meaningless text features, warned); "
                     "default: $MDM_KINEMIC_CLIP_WEIGHTS, else the caches")
        },
    )

    def __post_init__(self) -> None:
        if self.mdm_root is not None:
            if not str(self.mdm_root).strip():
                raise ValueError("mdm_root: give a folder path, or leave it unset for $MDM_ROOT / the submodule")
            self.mdm_root = os.path.abspath(os.path.expanduser(str(self.mdm_root)))
        if self.clip_weights is not None and str(self.clip_weights) != "random":
            path = Path(os.path.abspath(os.path.expanduser(str(self.clip_weights))))
            if not path.is_file():
                raise ValueError(
                    f"clip_weights: {path} is not a file; accepted values are a CLIP ViT-B/32 weight file "
                    "or 'random'"
                )
            self.clip_weights = str(path)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UpstreamSettings:
        """Settings from parsed ``add_upstream_options`` flags (paths made absolute now)."""
        return cls(mdm_root=getattr(args, "mdm_root", None), clip_weights=getattr(args, "clip_weights", None))


def add_upstream_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the ``upstream`` option group (``--mdm_root``, ``--clip_weights``) to a parser.

    Returns:
        The argparse group.
    """
    return add_dataclass_options(parser, UpstreamSettings, "upstream",
                                 description="upstream MDM and its CLIP text encoder")
