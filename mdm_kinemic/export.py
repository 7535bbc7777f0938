"""Export a trained KineMIC student as one standalone file, LoRA merged, loadable without peft.

    python -m mdm_kinemic.export --model_path SAVE/model000005000.pt --out FILE.pt \
        [--mdm_root DIR] [--clip_weights PATH|random] [--base_checkpoint FILE] [--no-verify_base]

The KineMIC checkpoint folder holds only adapters, the action embedding and the MIC module; the
export rebuilds the student from its base checkpoint, folds the adapters into the base weights
(peft ``merge_and_unload``) and writes ``{"format", "model", "args"}``: a KineMICMDM state dict
(no CLIP, as upstream checkpoints) and the base args.json with the kinemic section. Read it with
``mdm_kinemic.mdm.checkpoints.kinemic_checkpoint.load_exported``; upstream's ``load_saved_model`` also reads
its "model" key into a KineMICMDM.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field

from mdm_kinemic.mdm.upstream.options import UpstreamSettings, add_upstream_options

logger = logging.getLogger(__name__)


@dataclass
class ExportSettings:
    """What to export and where.

    Raises:
        ValueError: a path that is empty or does not exist, naming the flag.
    """

    model_path: str = field(metadata={"help": "KineMIC checkpoint: SAVE/model%09d.pt, or SAVE for its latest."})
    out: str = field(metadata={"help": "Output file of the standalone checkpoint (.pt)."})
    base_checkpoint: str | None = field(
        default=None, metadata={"help": "The base MDM file, when it moved since training (args.json records its sha256)."}
    )
    verify_base: bool = field(default=True, metadata={"help": "Check the base file's sha256 against args.json."})

    def __post_init__(self) -> None:
        for name in ("model_path", "out"):
            if not str(getattr(self, name) or "").strip():
                raise ValueError(f"--{name}: give a path")
        self.model_path = os.path.abspath(os.path.expanduser(self.model_path))
        self.out = os.path.abspath(os.path.expanduser(self.out))
        if not os.path.exists(self.model_path):
            raise ValueError(f"--model_path: {self.model_path} does not exist; pass SAVE/model%09d.pt of a KineMIC run")
        if os.path.isdir(self.out):
            raise ValueError(f"--out: {self.out} is a folder; give a file name such as {self.out}/kinemic_merged.pt")
        if self.base_checkpoint is not None:
            self.base_checkpoint = os.path.abspath(os.path.expanduser(self.base_checkpoint))


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m mdm_kinemic.export``."""
    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.export",
        description="Write a KineMIC student as one checkpoint with LoRA merged (loadable without peft).",
    )
    fields = ExportSettings.__dataclass_fields__

    def help_of(name: str) -> str:
        return fields[name].metadata["help"].replace("%", "%%")  # argparse %-formats help strings

    parser.add_argument("--model_path", required=True, help=help_of("model_path"))
    parser.add_argument("--out", required=True, help=help_of("out"))
    parser.add_argument("--base_checkpoint", default=None, help=help_of("base_checkpoint"))
    parser.add_argument("--verify_base", action=argparse.BooleanOptionalAction, default=True, help=help_of("verify_base"))
    add_upstream_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = ExportSettings(args.model_path, args.out, args.base_checkpoint, args.verify_base)
        upstream = UpstreamSettings.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        export_standalone,
        load_kinemic_checkpoint,
    )

    loaded = load_kinemic_checkpoint(
        settings.model_path,
        base_checkpoint=settings.base_checkpoint,
        verify_base=settings.verify_base,
        mdm_root=upstream.mdm_root,
        clip_weights=upstream.clip_weights,
    )
    path = export_standalone(loaded, settings.out)
    logger.info("wrote %s (step %d, LoRA merged, %d action classes)", path, loaded.step, loaded.model.settings.num_actions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
