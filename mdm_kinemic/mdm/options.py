"""Command-line options of the upstream seam: where upstream MDM is and which CLIP weights it uses.

``add_upstream_options(parser)`` adds an ``upstream`` group (``--mdm_root``, ``--clip_weights``)
built from ``UpstreamSettings``; ``UpstreamSettings.from_args(args)`` validates the values and
makes paths absolute against the current directory, before anything changes directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["UpstreamSettings", "add_dataclass_options", "add_upstream_options"]


def add_dataclass_options(group, cls, *, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--name`` flag per dataclass field of ``cls`` to an argparse group.

    The field's ``metadata['help']`` is the help text; bool fields become
    ``BooleanOptionalAction``; other types come from ``metadata['type']`` (default ``str``) and
    the default from the field's default. Fields named in ``skip`` are left out.
    """
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        kwargs = {"default": default, "help": f.metadata.get("help", "")}
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = f.metadata.get("type", str)
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        group.add_argument(f"--{f.name}", **kwargs)


@dataclass
class UpstreamSettings:
    """Where upstream MDM lives and which CLIP weights its text encoder loads."""

    mdm_root: str | None = field(
        default=None,
        metadata={
            "help": "Upstream MDM checkout (folder holding model/mdm.py). Default: $MDM_ROOT, else the "
            "submodule third_party/motion-diffusion-model."
        },
    )
    clip_weights: str | None = field(
        default=None,
        metadata={
            "help": "OpenAI CLIP ViT-B/32 weights: a file (OpenAI's ViT-B-32.pt or open_clip's ViT-B-32 "
            "'openai' file), or 'random' for dry runs (meaningless text features, warned on every run). "
            "Default: $MDM_KINEMIC_CLIP_WEIGHTS, else ~/.cache/clip/ViT-B-32.pt or open_clip's "
            "Hugging Face cache."
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
    group = parser.add_argument_group("upstream", "upstream MDM and its CLIP text encoder")
    add_dataclass_options(group, UpstreamSettings)
    return group
