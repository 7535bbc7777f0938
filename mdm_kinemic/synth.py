"""A synthetic action dataset in HumanML3D layout from a KineMIC student (the paper's use, Sec. 5).

    python -m mdm_kinemic.synth --model_path SAVE/model000005000.pt --per_class 383 --out DIR \\
        [--target_data NTU-VIBE --fewshot_split S0000] [--timestep_respacing ddim50 --sampler ddim]

writes, for every class of the checkpoint, ``per_class`` motions conditioned on the class prompt
c^T plus the action (classifier-free guidance 2.5 over both), each as long as a few-shot clip of
its class drawn at random (20 fps):

    DIR/new_joint_vecs/ID.npy   (T, 263) float32 features, de-normalised
    DIR/new_joints/ID.npy       (T, 22, 3) joints (recover_from_ric), metres, Y up
    DIR/texts/ID.txt            the class prompt, HumanML3D's caption#tokens#0.0#0.0
    DIR/labels.txt, classes.txt clip_id<TAB>class_index, class names (data/labels.py)
    DIR/train.txt, all.txt      every id
    DIR/Mean.npy, Std.npy       the statistics used to de-normalise
    DIR/manifest.json           the run (checkpoint, sha256, settings) and every motion's class,
                                length and seed
    DIR/grid.png                with --grid N: N samples per class under the real clips

Ids are ``synth_cCCC_NNNNN`` (run class, number within the class). A motion is finished when
its three files exist; running the same command again keeps finished motions and draws the
rest with their recorded seeds, which give the same motions (mdm/sampling/sampler.py: one generator per
motion). A folder holding another run's manifest is refused.

Under ``torchrun --nproc_per_node N -m mdm_kinemic.synth ...`` the ranks share one plan: its
batches (one length each, formed over the whole plan with one batch size) are dealt to the ranks by
cost (distributed.py), each rank draws and writes its batches' motions on its own device
(cuda:LOCAL_RANK for --device auto), and rank 0 writes the manifest first and the labels, lists
and grid after a barrier. A motion's batch depends on the plan and the batch size, never on N, so
N ranks write the same motions as one process (bit for bit on CPU with the same --batch_size or
on CPU's automatic one; docs/performance.md).

A plain text-to-motion MDM checkpoint (no "kinemic" section in its args.json) is sampled the
same way from the prompt of each class of ``--target_data`` (``--prompt_template``), with
guidance over the text alone: the paper's zero-shot row (mdm/sampling/prompt_model.py). Without
``--actions`` it samples the classes that have clips in the split (NTU-VIBE names 120 classes and
holds clips of 3), and logs which.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mdm_kinemic.core.mining import DEFAULT_PROMPT_TEMPLATE
from mdm_kinemic.core.prompts import draw_per_seed
from mdm_kinemic.data.fewshot_clips import (
    FewShotClipsError,
    classes_with_clips,
    fewshot_lengths,
)
from mdm_kinemic.digest import file_sha256
from mdm_kinemic.distributed import Ranks, rank_device, shard_by_cost, torch_device
from mdm_kinemic.flags import (
    add_dataclass_options,
    dataclass_from_args,
    device_field,
    parse_device,
)

__all__ = ["SynthError", "SynthSettings", "main", "plan_motions", "synthesize"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "mdm_kinemic.synth/1"


class SynthError(ValueError):
    """A synthesis request that cannot be served; the message names the file or flag and the fix."""


@dataclass(frozen=True)
class SynthSettings:
    """What to synthesise and where (the sampler's own settings: mdm/sampling/sampler.py SamplerSettings)."""

    model_path: str = field(metadata={"help": "KineMIC checkpoint: SAVE/model%09d.pt or the SAVE folder "
                                              "(written by python -m mdm_kinemic.train_fewshot); or a plain "
                                              "text-to-motion MDM, sampled zero-shot from the class prompts of "
                                              "--target_data's classes (--prompt_template)"})
    out: str = field(metadata={"help": "output folder (HumanML3D layout); an unfinished run there is resumed "
                                       "(--output_dir: upstream generate.py's name)",
                               "aliases": ("output_dir",)})
    per_class: int = field(default=383, metadata={
        "help": "motions per class (paper Sec. 5: 383 per class, 1149 for 3 classes)"})
    actions: tuple[str, ...] = field(default=(), metadata={
        "help": "classes to synthesise, by name (e.g. 'side kick') or index; default: every class of a KineMIC "
                "checkpoint; for a plain MDM, the classes of --target_data that have clips in the split"})
    prompt_template: str = field(default=DEFAULT_PROMPT_TEMPLATE, metadata={
        "help": "class prompt c^T of a plain MDM checkpoint, '{label}' = class name (paper Sec. 4); a KineMIC "
                "checkpoint uses the prompts it was trained with"})
    seed: int = field(default=10, metadata={"help": "seed of the lengths and of every motion's noise "
                                                    "(upstream generate.py's default 10)"})
    prompt_augmentation: bool | None = field(default=None, metadata={
        "help": "condition each motion on a prompt drawn by its own seed from its class's prompts recorded by a "
                "run trained with --prompt_augmentation (--no-prompt_augmentation: the first prompt); default: "
                "as the checkpoint was trained"})
    target_data: str | None = field(default=None, metadata={
        "help": "the few-shot target data (HumanML3D layout), whose clips' lengths are drawn per class; "
                "default: the one recorded in the checkpoint's args.json"})
    fewshot_split: str | None = field(default=None, metadata={
        "help": "few-shot split id under target_data/splits/fewshot (e.g. S0000); default: the recorded one, "
                "else every labelled clip of target_data"})
    task_split: str | None = field(default=None, metadata={
        "help": "list folder inside the few-shot split (default: the recorded one, else xsub)"})
    length_frames: int = field(default=0, metadata={
        "help": "give every motion this many frames (20 fps) instead of few-shot clip lengths; 0 = clip lengths"})
    norm_stats: str | None = field(default=None, metadata={
        "help": "folder with the Mean.npy/Std.npy of the base MDM's training data (default: see mdm/sampling/student.py)"})
    device: str = device_field()
    grid: int = field(default=0, metadata={
        "help": "write DIR/grid.png with this many samples per class under the real few-shot clips; 0 = none"})
    merge_lora: bool = field(default=True, metadata={
        "help": "fold the LoRA adapters into the base weights before sampling (same model, fewer matmuls)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if not str(self.model_path).strip():
            raise ValueError("model_path: give a KineMIC checkpoint file or folder")
        if not str(self.out).strip():
            raise ValueError("out: give an output folder")
        if isinstance(self.per_class, bool) or not isinstance(self.per_class, int) or self.per_class < 1:
            raise ValueError(f"per_class must be an integer >= 1 (motions per class), got {self.per_class!r}")
        if not 0 <= self.length_frames <= 196:
            raise ValueError(f"length_frames must be in [0, 196] (0 = few-shot clip lengths), got {self.length_frames}")
        if self.grid < 0:
            raise ValueError(f"grid must be >= 0, got {self.grid}")
        object.__setattr__(self, "device", parse_device(self.device))


def _recorded_data(section: dict, key: str) -> Any:
    """A few-shot data setting the training run recorded in args.json's kinemic section
    (mdm/training/training_loop.py stores them in kinemic.train.data; older files at the top level)."""
    train = section.get("train")
    data = train.get("data") if isinstance(train, dict) else None
    if isinstance(data, dict) and data.get(key) is not None:
        return data[key]
    return section.get(key) if key != "class_names" else None


def plan_motions(
    classes: Sequence[int], per_class: int, lengths: dict[int, list[int]], seed: int
) -> list[dict[str, Any]]:
    """Every motion of a run: id, class, length (drawn from its class's clip lengths) and seed.

    Deterministic in (classes, per_class, lengths, seed).

    Returns:
        Dicts {"id", "class", "length", "seed"}, class by class.
    """
    rng = np.random.default_rng(seed)
    plan = []
    for c in classes:
        drawn = rng.choice(np.asarray(lengths[c]), size=per_class, replace=True)
        seeds = rng.integers(0, 2**31 - 1, size=per_class)
        for k in range(per_class):
            plan.append({"id": f"synth_c{c:03d}_{k:05d}", "class": int(c), "length": int(drawn[k]), "seed": int(seeds[k])})
    return plan


def _is_done(out: Path, motion_id: str) -> bool:
    from mdm_kinemic.data.humanml3d import JOINTS_DIR, MOTION_DIR, TEXT_DIR

    return all((out / d / f"{motion_id}{s}").is_file()
               for d, s in ((MOTION_DIR, ".npy"), (JOINTS_DIR, ".npy"), (TEXT_DIR, ".txt")))


def _check_out(out: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of an unfinished same run in ``out`` (None for a fresh folder).

    Raises:
        SynthError: ``out`` holds another run's manifest, or a dataset not written by synth.
    """
    from mdm_kinemic.data.humanml3d import MOTION_DIR

    path = out / MANIFEST
    if path.is_file():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise SynthError(f"{path} is unreadable ({err}); choose another --out or delete the folder") from err
        previous = manifest.get("run", {})
        differing = sorted(k for k in set(previous) | set(run) if previous.get(k) != run.get(k))
        if manifest.get("format") != MANIFEST_FORMAT or differing:
            shown = ", ".join(f"{k}: {previous.get(k)!r} there, {run.get(k)!r} now" for k in differing[:4])
            raise SynthError(
                f"{out} holds another run's manifest ({shown}). Fix: choose another --out, or delete {out} "
                "to replace that run"
            )
        return manifest
    if (out / MOTION_DIR).is_dir() and any((out / MOTION_DIR).iterdir()):
        raise SynthError(f"{out} holds motions but no {MANIFEST}: it is not a synth output; choose another --out")
    return None


def _prepare_out(out: Path, run: dict[str, Any], ranks: Ranks, make_plan) -> tuple[list[dict[str, Any]], set[str]]:
    """(plan, ids of its unfinished motions), decided by rank 0 and shared with every rank.

    Rank 0 checks ``out`` (_check_out), takes the plan of an unfinished same run or ``make_plan()``,
    and writes the manifest before any motion is drawn.

    Raises:
        SynthError: on every rank, when rank 0 refuses ``out``.
    """
    from mdm_kinemic.atomic import atomic_write_text

    decision: tuple[str, Any] | None = None
    if ranks.is_main:
        try:
            previous = _check_out(out, run)
            plan = previous["samples"] if previous is not None else make_plan()
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / MANIFEST, _manifest_text({"format": MANIFEST_FORMAT, "run": run, "samples": plan}))
            decision = ("plan", (plan, {m["id"] for m in plan if not _is_done(out, m["id"])}))
        except SynthError as err:
            decision = ("error", str(err))
    decision = ranks.broadcast(decision)
    if decision[0] == "error":
        raise SynthError(decision[1])
    return decision[1]


def _manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as JSON: the run indented, one motion per line."""
    samples = ",\n  ".join(json.dumps(m) for m in manifest["samples"])
    head = {k: v for k, v in manifest.items() if k != "samples"}
    return json.dumps(head, indent=1)[:-2] + f',\n "samples": [\n  {samples}\n ]\n}}\n'


def synthesize(settings: SynthSettings, sampling: Any, upstream: Any, ranks: Ranks | None = None) -> Path:
    """Run (or resume) a synthesis; see the module docstring.

    Args:
        settings: SynthSettings.
        sampling: mdm/sampling/sampler.py SamplerSettings (guidance, respacing, sampler, batch size).
        upstream: mdm/upstream/options.py UpstreamSettings (mdm_root, clip_weights).
        ranks: this process's place under torchrun (distributed.py; default: a single process). Each
            rank draws its share of the plan's batches; rank 0 writes the manifest, statistics,
            labels, lists and grid.

    Returns:
        The manifest path.

    Raises:
        SynthError, SamplingInputError: bad requests (see the messages).
    """
    import torch

    from mdm_kinemic.atomic import atomic_write_text
    from mdm_kinemic.data.hml_vec import recover_from_ric
    from mdm_kinemic.data.humanml3d import (
        format_text_line,
        tokenize_caption,
        write_clip,
        write_mean_std,
        write_split,
    )
    from mdm_kinemic.data.labels import write_labels
    from mdm_kinemic.mdm.sampling.prompt_model import (
        is_kinemic_checkpoint,
        load_prompt_model,
    )
    from mdm_kinemic.mdm.sampling.sampler import (
        BatchedGuidance,
        GuidedSampler,
        auto_batch_size,
        plan_batches,
        respaced_diffusion,
    )
    from mdm_kinemic.mdm.sampling.student import (
        find_norm_stats,
        load_student,
        read_student_info,
        run_clip_weights,
        select_actions,
    )
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    ranks = ranks or Ranks()
    try:  # before anything is read or written
        device = torch_device(rank_device(settings.device, ranks))
    except ValueError as err:
        raise SynthError(str(err)) from err
    out = Path(os.path.abspath(os.path.expanduser(settings.out)))
    kinemic = is_kinemic_checkpoint(settings.model_path)
    info = read_student_info(settings.model_path) if kinemic else _prompt_info(settings)
    names = [a for a in settings.actions if not a.lstrip("-").isdigit()]
    indices = [int(a) for a in settings.actions if a.lstrip("-").isdigit()]
    classes = sorted(set(select_actions(info, names=names, indices=indices)))

    section = dict(info.section)
    recorded_data = _recorded_data(section, "target_data")
    target_data = settings.target_data or recorded_data
    fewshot_split = settings.fewshot_split or _recorded_data(section, "fewshot_split")
    if str(fewshot_split).lower() == "none":
        fewshot_split = None
    task_split = settings.task_split or _recorded_data(section, "task_split") or "xsub"
    if not kinemic and not settings.actions:
        # a plain MDM has no classes of its own: NTU-VIBE names 120, its split holds clips of 3
        where = f" (split {fewshot_split}/{task_split})" if fewshot_split else ""
        with_clips = classes_with_clips(os.path.abspath(os.path.expanduser(str(target_data))), fewshot_split,
                                        task_split)
        classes = sorted(set(select_actions(info, names=with_clips)))
        logger.info("sampling the %d of %d classes of %s that have clips there%s; --actions chooses others: %s",
                    len(classes), info.num_actions, target_data, where, ", ".join(with_clips))
    if settings.length_frames:
        lengths = {c: [settings.length_frames] for c in classes}
        length_source: dict[str, Any] = {"length_frames": settings.length_frames}
        real_ids: dict[int, list[str]] = {}
    else:
        if not target_data:
            raise SynthError(
                f"{info.model_path.parent / 'args.json'} records no target data: pass --target_data (and "
                "--fewshot_split) of the few-shot clips whose lengths the motions take, or --length_frames N"
            )
        target_data = os.path.abspath(os.path.expanduser(str(target_data)))
        same_data = recorded_data is not None and os.path.abspath(str(recorded_data)) == target_data
        # the run's own target clips where it recorded them and the data is the same
        # only the chosen classes need clips: a split of 3 NTU classes serves a 120-class prompt model
        chosen_lengths, chosen_ids = fewshot_lengths([info.class_names[c] for c in classes], target_data,
                                                     fewshot_split, task_split,
                                                     target_ids=section.get("target_ids") if same_data else None,
                                                     names_file=_recorded_data(section, "class_names"))
        lengths = {c: chosen_lengths[i] for i, c in enumerate(classes)}
        real_ids = {c: chosen_ids[i] for i, c in enumerate(classes)}
        length_source = {"target_data": target_data, "fewshot_split": fewshot_split, "task_split": task_split,
                         "clip_lengths": {info.class_names[c]: lengths[c] for c in classes}}
    sets = _prompt_sets(info, settings.prompt_augmentation)
    run = {
        "model_path": str(info.model_path),
        "model_sha256": file_sha256(info.model_path),
        "per_class": settings.per_class,
        "seed": settings.seed,
        "classes": [info.class_names[c] for c in classes],
        "class_prompts": [info.class_prompts[c] for c in classes],
        "lengths": length_source,
        "guidance_param": sampling.guidance_param,
        "timestep_respacing": sampling.timestep_respacing,
        "sampler": sampling.sampler,
        # only with augmentation, so that folders written before the option stay resumable
        **({"class_prompt_sets": [list(sets[c]) for c in classes]} if sets else {}),
    }
    plan, todo_ids = _prepare_out(out, run, ranks, lambda: plan_motions(classes, settings.per_class, lengths,
                                                                        settings.seed))
    logger.info("%s: %d of %d motions to draw (%d kept)", out, len(todo_ids), len(plan), len(plan) - len(todo_ids))
    clip_weights = run_clip_weights(upstream.clip_weights, info) if kinemic else upstream.clip_weights
    root = import_upstream(upstream.mdm_root, clip_weights=clip_weights)
    mean, std, stats_from = find_norm_stats(info, settings.norm_stats, mdm_root=root)
    if ranks.is_main:
        write_mean_std(out, mean, std)
    if todo_ids:
        if kinemic:
            loaded = load_student(info.model_path, mdm_root=root, clip_weights=clip_weights, device=device,
                                  merge_lora=settings.merge_lora)
        else:
            loaded = load_prompt_model(info, mdm_root=root, clip_weights=clip_weights, device=device)
        guided = BatchedGuidance(loaded.model, sampling.guidance_param)
        sampler = GuidedSampler(guided, respaced_diffusion(loaded.args, sampling.timestep_respacing),
                                sampling.sampler, device)
        # a motion's prompt depends on its class and seed only (core/prompts.py)
        texts = (draw_per_seed(sets, [m["class"] for m in plan], [m["seed"] for m in plan]) if sets
                 else [info.class_prompts[m["class"]] for m in plan])
        unique = sorted(set(texts))
        text_features = loaded.model.text_features(unique) if sets else loaded.model.prompt_features()
        rows = [unique.index(t) for t in texts] if sets else [m["class"] for m in plan]
        lengths_of_plan = [m["length"] for m in plan]
        # the batches are formed over the whole plan, never over what is left or over the ranks, so a
        # motion is drawn in the same batch by any number of ranks and after any resume
        batch_size = sampling.batch_size or min(ranks.all_gather(auto_batch_size(
            lambda n: _probe(guided, sampler, text_features[:1], torch.zeros(1, dtype=torch.long),
                             max(lengths_of_plan), n),
            max(len(b) for b in plan_batches(lengths_of_plan, len(plan))), device)))
        units = [b for b in plan_batches(lengths_of_plan, batch_size) if any(plan[i]["id"] in todo_ids for i in b)]
        mine = [units[u] for u in shard_by_cost([len(b) * plan[b[0]]["length"] for b in units],
                                                ranks.world_size)[ranks.rank]]
        logger.info("sampling %d batches (%d motions) of %d on rank %d of %d, %d steps each, batches of up to %d "
                    "on %s", len(mine), sum(map(len, mine)), len(units), ranks.rank, ranks.world_size,
                    sampler.num_steps, batch_size, device)
        lines = {t: format_text_line(t, tokens=tokenize_caption(t)) for t in unique}
        mean_t, std_t = torch.from_numpy(mean), torch.from_numpy(std)
        bar = _progress(sum(map(len, mine)), settings.progress and ranks.is_main)
        try:
            for indices in mine:
                batch = [plan[i] for i in indices]
                embed = text_features[torch.tensor([rows[i] for i in indices], device=text_features.device)]
                motions = sampler.sample(embed, torch.tensor([m["class"] for m in batch], dtype=torch.long),
                                         batch[0]["length"], [m["seed"] for m in batch])
                features = motions.detach().cpu().float()[:, :, 0, :].permute(0, 2, 1) * std_t + mean_t
                joints = recover_from_ric(features)
                for k, i in enumerate(indices):
                    motion = plan[i]
                    if motion["id"] in todo_ids:  # finished motions of a redrawn batch keep their files
                        write_clip(out, motion["id"], features[k].numpy(), joints[k].numpy())
                        atomic_write_text(out / "texts" / f"{motion['id']}.txt", lines[texts[i]] + "\n")
                bar.update(len(indices))
        finally:
            bar.close()
    ranks.barrier()
    if not ranks.is_main:
        return out / MANIFEST
    ids = [m["id"] for m in plan]
    write_labels(out, ids, [classes.index(m["class"]) for m in plan], [info.class_names[c] for c in classes])
    write_split(out, "train", ids)
    write_split(out, "all", ids)
    if settings.grid:
        _write_grid(out, plan, classes, info.class_names, settings.grid, target_data, real_ids)
    logger.info("%s: %d motions of %d classes (statistics from %s)", out, len(plan), len(classes), stats_from)
    return out / MANIFEST


def _prompt_sets(info, augmentation: bool | None) -> tuple[tuple[str, ...], ...]:
    """The prompt sets each motion draws from, or () for one prompt per class.

    Raises:
        SynthError: --prompt_augmentation for a checkpoint that records no prompt sets.
    """
    if augmentation is False:
        return ()
    sets = tuple(getattr(info, "class_prompt_sets", ()))
    if augmentation and not sets:
        raise SynthError(
            f"--prompt_augmentation: {info.model_path} records one prompt per class (it was not trained with "
            "python -m mdm_kinemic.train_fewshot --prompt_augmentation); drop the flag")
    return sets


def _prompt_info(settings: SynthSettings):
    """StudentInfo of a plain MDM: the classes of --target_data with --prompt_template as c^T."""
    from mdm_kinemic.data.labels import load_labelled
    from mdm_kinemic.mdm.sampling.prompt_model import prompt_model_info

    if not settings.target_data:
        raise SynthError(
            f"{settings.model_path} is a plain MDM checkpoint, which knows no action classes: pass --target_data "
            "DIR (a labelled HumanML3D-layout folder) whose classes it is to sample from their prompts"
        )
    root = Path(os.path.abspath(os.path.expanduser(settings.target_data)))
    try:
        names = load_labelled(root, None, missing="skip").class_names
    except (FileNotFoundError, ValueError) as err:
        raise SynthError(f"cannot read the classes of {root}: {err}") from err
    return prompt_model_info(settings.model_path, names, settings.prompt_template)


def _probe(guided, sampler, text_embed, action, length: int, n: int) -> None:
    import torch

    x = torch.zeros((n, *sampler.shape, length), device=sampler.device)
    t = torch.zeros(n, dtype=torch.long, device=sampler.device)
    with torch.no_grad():
        guided(x, t, {"text_embed": text_embed.expand(n, -1)[None].to(sampler.device),
                      "action": action.expand(n).to(sampler.device)})


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="motion", desc="synth", disable=not enabled, file=sys.stderr)


def _write_grid(out: Path, plan, classes, class_names, per_class: int, target_data, real_ids) -> None:
    from mdm_kinemic.data.humanml3d import HumanML3D
    from mdm_kinemic.viz.render import GridColumn, render_grid

    synthetic = HumanML3D(out)
    real = HumanML3D(target_data) if target_data else None
    columns = []
    for c in classes:
        samples = [m["id"] for m in plan if m["class"] == c][:per_class]
        real_clip = real.joints(real_ids[c][0]) if real is not None and real_ids.get(c) else None
        columns.append(GridColumn(class_names[c], real_clip, [synthetic.joints(i) for i in samples]))
    render_grid(columns, out / "grid.png", title=f"{out.name}: real few-shot clip (top), generated (below)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: SynthSettings, SamplerSettings and the upstream options."""
    from mdm_kinemic.mdm.sampling.sampler import SamplerSettings
    from mdm_kinemic.mdm.upstream.options import add_upstream_options

    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.synth",
        description="Write a synthetic action dataset in HumanML3D layout from a KineMIC checkpoint.",
    )
    add_dataclass_options(parser, SynthSettings, "synth")
    add_dataclass_options(parser, SamplerSettings, "sampling")
    add_upstream_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for a bad request)."""
    from mdm_kinemic.mdm.sampling.sampler import SamplerSettings
    from mdm_kinemic.mdm.sampling.student import SamplingInputError
    from mdm_kinemic.mdm.upstream.options import UpstreamSettings

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = dataclass_from_args(SynthSettings, args)
        sampling = dataclass_from_args(SamplerSettings, args)
        upstream = UpstreamSettings.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    try:
        ranks = Ranks.from_env()
    except ValueError as err:
        parser.error(str(err))
    try:
        synthesize(settings, sampling, upstream, ranks)
    except (SynthError, FewShotClipsError, SamplingInputError) as err:
        if ranks.is_main:  # every rank refuses the same request; one message is enough
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        ranks.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
