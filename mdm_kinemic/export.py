"""Export a trained KineMIC student: LoRA merged into one file, or peft's own adapter format.

    python -m mdm_kinemic.export --model_path SAVE/model000005000.pt --out FILE.pt \
        [--format merged|merged_safetensors|peft] [--overwrite] [--device cpu|N|-1|cuda:N] \
        [--mdm_root DIR] [--clip_weights PATH|random] [--base_checkpoint FILE] [--no-verify_base]

The KineMIC checkpoint folder holds only adapters, the action embedding and the MIC module; the
export rebuilds the student from its base checkpoint, then writes, by ``--format``:

- ``merged`` (default): the adapters folded into the base weights (peft ``merge_and_unload``),
  ``{"format", "model", "args"}`` in one torch file: a KineMICMDM state dict (no CLIP, as upstream
  checkpoints) and the base args.json with the kinemic section. Read it with
  ``mdm_kinemic.mdm.checkpoints.kinemic_checkpoint.load_exported``; upstream's ``load_saved_model``
  also reads its "model" key into a KineMICMDM.
- ``merged_safetensors``: the same state dict as a ``.safetensors`` file, "format" and "args" in its
  metadata; ``load_exported`` reads it too.
- ``peft``: a folder for peft's ``PeftModel.from_pretrained`` onto the base MDM
  (``adapter_config.json``, ``adapter_model.safetensors``), plus the action embedding and the MIC
  module in ``kinemic_modules.safetensors`` with their shapes in ``kinemic_modules.json``, and
  ``args.json`` (kinemic_checkpoint.export_peft; docs/model.md shows the loading code).

CLIP is never part of an export, so without ``--clip_weights`` the model is built with a random
CLIP stand-in and no CLIP weights are needed. An existing ``--out`` is replaced only with
``--overwrite``, and never when it is one of the export's inputs (the run's model file or
args.json, the base checkpoint). Every user error is one message with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mdm_kinemic.flags import (
    add_dataclass_options,
    dataclass_from_args,
    device_field,
    parse_device,
)
from mdm_kinemic.mdm.upstream.options import UpstreamSettings, add_upstream_options

logger = logging.getLogger(__name__)

PROG = "python -m mdm_kinemic.export"
#: the file suffix each single-file format needs
SUFFIXES = {"merged": ".pt", "merged_safetensors": ".safetensors"}


@dataclass
class ExportSettings:
    """What to export, how and where.

    Raises:
        ValueError: a path that is empty or does not exist, an --out that does not fit --format,
            naming the flag.
    """

    model_path: str = field(metadata={"help": "KineMIC checkpoint: SAVE/model%09d.pt, or SAVE for its latest."})
    out: str = field(metadata={"help": "Output: a .pt file (--format merged), a .safetensors file "
                                       "(merged_safetensors) or a folder (peft)."})
    format: Literal["merged", "merged_safetensors", "peft"] = field(default="merged", metadata={
        "help": "merged: LoRA folded into the base weights, one torch file loadable without peft; "
                "merged_safetensors: the same as safetensors; peft: peft's save_pretrained adapters plus "
                "the action embedding and MIC module in safetensors"})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace an existing --out (never an input of the export; for peft only an earlier peft export)."})
    base_checkpoint: str | None = field(
        default=None, metadata={"help": "The base MDM file, when it moved since training (args.json records its sha256)."}
    )
    verify_base: bool = field(default=True, metadata={"help": "Check the base file's sha256 against args.json."})
    device: str = device_field("cpu", help="torch device that rebuilds and merges the student (the files hold CPU "
                                           "tensors either way): cpu, cuda, cuda:N, auto, or upstream's integer "
                                           "(N = cuda:N, -1 = cpu)")

    def __post_init__(self) -> None:
        for name in ("model_path", "out"):
            if not str(getattr(self, name) or "").strip():
                raise ValueError(f"--{name}: give a path")
        self.device = parse_device(self.device)
        self.model_path = os.path.abspath(os.path.expanduser(self.model_path))
        self.out = os.path.abspath(os.path.expanduser(self.out))
        if not os.path.exists(self.model_path):
            raise ValueError(f"--model_path: {self.model_path} does not exist; pass SAVE/model%09d.pt of a KineMIC run")
        suffix = SUFFIXES.get(self.format)
        if suffix is not None:
            if os.path.isdir(self.out):
                raise ValueError(f"--out: {self.out} is a folder; give a file name such as "
                                 f"{self.out}/kinemic_merged{suffix}")
            if not self.out.endswith(suffix):
                other = next((f for f, s in SUFFIXES.items() if self.out.endswith(s)), None)
                fix = f"pass --format {other}" if other else f"name the file *{suffix}"
                raise ValueError(f"--out: --format {self.format} writes a {suffix} file, not {self.out}; {fix}")
        elif os.path.splitext(self.out)[1] in SUFFIXES.values():
            raise ValueError(f"--out: --format peft writes a folder, not the file {self.out}; give a folder name")
        if self.base_checkpoint is not None:
            self.base_checkpoint = os.path.abspath(os.path.expanduser(self.base_checkpoint))


def export_inputs(settings: ExportSettings) -> dict[str, Path]:
    """The files an export reads: the KineMIC model file and its args.json, the base checkpoint
    and its args.json (absolute paths; the base as args.json records it, or --base_checkpoint).

    Returns:
        {what the file is: path}.

    Raises:
        FileNotFoundError: no model file at --model_path.
        KineMICCheckpointError: args.json missing or without a kinemic section.
    """
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        KINEMIC_SECTION,
        read_kinemic_args,
        resolve_model_file,
    )

    model_file = resolve_model_file(settings.model_path)
    section = read_kinemic_args(model_file)[KINEMIC_SECTION]
    inputs = {"the KineMIC model file": model_file, "the run's args.json": model_file.with_name("args.json")}
    base = settings.base_checkpoint or section.get("base_checkpoint")
    if base:
        inputs.update({"the base checkpoint": Path(base), "the base checkpoint's args.json": Path(base).with_name("args.json")})
    return inputs


def check_out(settings: ExportSettings, inputs: Mapping[str, Path]) -> None:
    """Refuse an --out that is (or, for a folder, holds) an input, that exists without --overwrite, or
    (--format peft) that holds files other than a peft export's.

    Raises:
        ValueError: naming --out, the input it would replace and the fix.
    """
    out = Path(settings.out)
    real_out = Path(os.path.realpath(out))
    for role, path in inputs.items():
        real = Path(os.path.realpath(path))
        if real == real_out or real_out in real.parents:
            what = f"is {role}" if real == real_out else f"holds {role} {path}"
            raise ValueError(
                f"--out: {out} {what}, which this export reads: it is never replaced, even with --overwrite. "
                "Choose another --out"
            )
    if out.exists() and not settings.overwrite:
        raise ValueError(f"--out: {out} exists; pass --overwrite to replace it, or choose another --out")
    if settings.format == "peft" and out.exists():
        from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import PEFT_EXPORT_FILES

        others = sorted(p.name for p in out.iterdir() if p.name not in PEFT_EXPORT_FILES) if out.is_dir() else [out.name]
        if others:
            raise ValueError(
                f"--out: {out} holds files a peft export does not write ({', '.join(others[:4])}); --overwrite "
                "replaces only an earlier peft export. Choose another --out"
            )


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m mdm_kinemic.export``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a KineMIC student with LoRA merged (loadable without peft), or as peft adapters.",
    )
    add_dataclass_options(parser, ExportSettings, "export")
    add_upstream_options(parser)
    return parser


def _clip_weights(upstream: UpstreamSettings) -> str | None:
    """--clip_weights, else the random stand-in where upstream uses it: CLIP is never exported."""
    from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_state

    if upstream.clip_weights is not None:
        return upstream.clip_weights
    import_upstream(upstream.mdm_root)
    state = upstream_state()
    if state is not None and state.clip_stand_in:
        # its "random text features" warning does not concern an export, which holds no CLIP
        logging.getLogger("mdm_kinemic.text.clip").setLevel(logging.ERROR)
        return "random"
    return None


def export(settings: ExportSettings, upstream: UpstreamSettings) -> Path:
    """Run an export (see the module docstring).

    Returns:
        The written file or folder.

    Raises:
        ValueError, FileNotFoundError, FileExistsError: user errors (bad paths, a checkpoint that
            cannot be used, upstream or CLIP weights not found), each with its message.
    """
    from mdm_kinemic.distributed import torch_device
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        export_peft,
        export_standalone,
        load_kinemic_checkpoint,
    )

    check_out(settings, export_inputs(settings))
    clip_weights = _clip_weights(upstream)
    loaded = load_kinemic_checkpoint(
        settings.model_path,
        base_checkpoint=settings.base_checkpoint,
        verify_base=settings.verify_base,
        mdm_root=upstream.mdm_root,
        clip_weights=clip_weights,
        device=torch_device(settings.device),
    )
    if settings.format == "peft":
        path = export_peft(loaded, settings.out, overwrite=settings.overwrite)
    else:
        path = export_standalone(loaded, settings.out, safetensors=settings.format == "merged_safetensors")
    logger.info("wrote %s (%s, step %d, %d action classes)", path, settings.format, loaded.step,
                loaded.model.settings.num_actions)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = dataclass_from_args(ExportSettings, args)
        upstream = UpstreamSettings.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    try:
        export(settings, upstream)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
