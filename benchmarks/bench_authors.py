"""Our KineMIC next to the authors' implementation (github LuCazzola/KineMIC): step time, memory, synthesis.

    python benchmarks/bench_authors.py --authors_root DIR [--out benchmarks/results/authors.json]
        [--rounds 3] [--size full|tiny] [--device cpu] [--threads N] [--sample_steps 50
        --sample_motions 30 --sample_frames 60 --sample_rounds 1]

DIR is a checkout of the authors' code that the user provides (``git clone
https://github.com/LuCazzola/KineMIC DIR``); it is only read, and nothing of it enters this
repository. Their MDM fork (DIR/external/motion-diffusion-model) reuses upstream MDM's package
names (model, utils, diffusion, data_loaders, train), so each side runs in its own child process
(this script with the internal flag ``--side``), one after the other, never both at once. A first
child writes what both load: one random checkpoint of humanml_trans_enc_512's architecture
(mdm_kinemic.mdm.checkpoints.random_checkpoint; ``--size tiny``: 2 layers, latent 64) and one
batch of 30 (target, prior) pairs (3 classes x 10 shots; targets of 40..64 frames, priors of
98..196, random hml_vec features, class prompts and captions). CLIP is ViT-B/32 with random
weights (open_clip) on both sides.

Measured on each side, from the same weights and the same batch:

* one training step with every term (L_rec^T, L_con, window mining, L_rec^{P*}, L_dist, dww), as
  each training loop runs it, median of ``--rounds`` after one warm-up step, in wall seconds and
  in CPU seconds of the process:
  - theirs: their TrainLoop (train/training_loop.py), built as their train/train_mdm.py builds it
    (create_model_and_diffusion: the KineMIC module of two full MDMs, prior and target, each with
    its own CLIP; the TrainLoop loads the checkpoint into each stream with load_model_wo_clip,
    LoRA on the target stream, set_model_grads, their MixedPrecisionTrainer and AdamW over all
    parameters), and its own run_step on the batch collated by their dual_collate (both streams
    padded to 196 frames, as their dataset pads); their flags are their defaults plus
    ``--model_type KineMIC --batch_size 30 --peft LoRA --dww`` (every term on, as our Full row);
  - ours: KineMICTrainLoop's step (mdm/training/training_loop.py) without its data loader: the
    objective of core/objective.py (Full preset) on one MDM whose LoRA adapters are switched off
    for the teacher, upstream's MixedPrecisionTrainer and AdamW over the trainable parameters,
    gradient clipping, the loss logging; targets padded to the longest target, priors to the
    longest prior; CLIP text features pre-warmed into the text cache, as training does;
* peak memory of that training: the child's peak resident set (VmHWM) over the steps, counted
  from the end of setup (the heap trimmed first on both sides, so that the figure is what each
  side holds), and torch.cuda.max_memory_allocated on a GPU;
* synthesis throughput: ``--sample_motions`` motions of ``--sample_frames`` frames in one batch
  over ``--sample_steps`` diffusion steps with classifier-free guidance 2.5, after the training
  steps, timed around the sampling loop only (models loaded, a 2-step run first): theirs as their
  sample/generate.py samples (model.eval(), which merges their LoRA; wrap_w_classifier_free_sampling;
  p_sample_loop on their diffusion built with --diffusion_steps = sample_steps), ours as
  mdm_kinemic.synth samples (load_student, LoRA merged; GuidedSampler on the base checkpoint's
  schedule respaced to sample_steps). Both evaluate the network on 2 x motions rows per step
  (theirs in two passes, ours in one).

Goal: our step <= 0.8x their seconds, our peak memory <= 0.6x theirs. Also timed, for reference
only: their step with the CLIP text features passed in (y['text_embed'], which their MDM accepts),
to show how much of their step CLIP takes. On a machine that other jobs share, pass --threads 1:
the CPU seconds then hardly move with the load, the wall seconds do. Prints a markdown table and
writes the JSON result (measured values, ratios, machine facts, the authors' commit, the patches
applied to run their code here) to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the script runs from a checkout without an install too
    sys.path.insert(0, str(REPO_ROOT))

# the parent imports no torch (benchmarks/_timing.py does): only one torch process runs at a time
from mdm_kinemic.atomic import atomic_write_text

AUTHORS_URL = "https://github.com/LuCazzola/KineMIC"
AUTHORS_MDM = Path("external") / "motion-diffusion-model"
AUTHORS_MARKER = AUTHORS_MDM / "model" / "kinemic.py"
SIDES = ("authors", "ours")
SIZES = {"full": (None, None), "tiny": (2, 64)}  # (layers, latent_dim); None keeps the preset's 8 x 512
CLASS_NAMES = ("run on the spot", "side kick", "stretch oneself")
SHOTS = 10
GUIDANCE = 2.5
GOAL_TIME = 0.8
GOAL_MEMORY = 0.6
MAX_FRAMES = 196  # HumanML3D's max_motion_length, to which their dataset pads both streams
STEP_LOG_LIMIT = 4000  # characters of a failed child's stderr shown


# -- shared by the children ------------------------------------------------------------------------


def _proc_status_mib(key: str) -> float:
    """A field of /proc/self/status in MiB (benchmarks/_timing.py, imported in the children only)."""
    from _timing import proc_status_mib

    return proc_status_mib(key)


def _trim_heap() -> bool:
    """Return freed heap pages to the OS (glibc), so that RSS counts live memory; False elsewhere."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _start_memory(device: Any) -> dict[str, Any]:
    """After setup: RSS, then the peak counters reset (VmHWM to the current RSS, CUDA's peak)."""
    import torch

    gc.collect()
    trimmed = _trim_heap()
    setup_rss = _proc_status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS, to the current RSS
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    return {"setup_rss_mib": setup_rss, "heap_trimmed_after_setup": trimmed}


def _end_memory(device: Any, memory: dict[str, Any]) -> dict[str, Any]:
    import torch

    memory["peak_rss_mib"] = _proc_status_mib("VmHWM")
    if device.type == "cuda":
        memory["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory


def _measure(run: Callable[[], Any], device: Any, count: int, warm_up: bool) -> dict[str, Any]:
    """Wall seconds (device synchronised) and CPU seconds of the process (all its threads) of
    ``count`` calls, after one untimed call when ``warm_up``; medians too.

    The CPU seconds hardly move when other processes share the cores (the wall seconds do), so
    they are the steadier comparison on a loaded machine, with ``--threads 1`` at least.
    """
    from _timing import timed

    if warm_up:
        timed(run, device)
    wall, cpu = [], []
    for _ in range(count):
        start = time.process_time()
        wall.append(timed(run, device))
        cpu.append(time.process_time() - start)
    return {"seconds": wall, "cpu_seconds": cpu, "median_s": statistics.median(wall), "min_s": min(wall),
            "median_cpu_s": statistics.median(cpu)}


def _held(model: Any) -> dict[str, Any]:
    """What a side's model holds: parameters (each once), their MiB, MDM transformers, CLIP models."""
    import torch

    params = {id(p): p for p in model.parameters()}
    buffers = {id(b): b for b in model.buffers()}
    size = sum(t.numel() * t.element_size() for t in list(params.values()) + list(buffers.values()))
    return {
        "parameters": sum(p.numel() for p in params.values()),
        "trainable_parameters": sum(p.numel() for p in params.values() if p.requires_grad),
        "parameter_and_buffer_mib": size / 2**20,
        "mdm_transformers": sum(isinstance(m, torch.nn.TransformerEncoder) for m in model.modules()),
        "clip_models": len({id(m) for n, m in model.named_modules() if n.split(".")[-1] == "clip_model"}),
    }


def _facts() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_average": os.getloadavg()}


# -- child 0: the inputs both sides load ------------------------------------------------------------


def write_inputs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The random checkpoint and the batch of (target, prior) pairs, under ``work``."""
    import torch

    from mdm_kinemic.core.mining import DEFAULT_PROMPT_TEMPLATE
    from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
        RandomCheckpointSettings,
        make_random_checkpoint,
    )
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream(clip_weights="random")
    layers, latent_dim = SIZES[args.size]
    ckpt = make_random_checkpoint(RandomCheckpointSettings(out=str(work / "base"), layers=layers, latent_dim=latent_dim))
    g = torch.Generator().manual_seed(1)
    size = len(CLASS_NAMES) * SHOTS
    target_lengths = torch.randint(40, args.target_frames + 1, (size,), generator=g)
    prior_lengths = torch.randint(args.prior_frames // 2, args.prior_frames + 1, (size,), generator=g)
    target_lengths[0], prior_lengths[0] = args.target_frames, args.prior_frames
    labels = torch.arange(len(CLASS_NAMES)).repeat_interleave(SHOTS)
    batch = {
        "targets": [torch.randn(263, int(n), generator=g) for n in target_lengths],
        "priors": [torch.randn(263, int(n), generator=g) for n in prior_lengths],
        "labels": labels.tolist(),
        "prompts": [DEFAULT_PROMPT_TEMPLATE.format(label=CLASS_NAMES[c]) for c in labels.tolist()],
        "captions": [f"a person moves, source caption {i}" for i in range(size)],
        "class_names": list(CLASS_NAMES),
    }
    torch.save(batch, work / "batch.pt")
    return {"checkpoint": str(ckpt), "batch": str(work / "batch.pt")}


# -- child 1: the authors' code ---------------------------------------------------------------------


def _install_authors_patches(mdm_root: Path) -> list[str]:
    """What their code needs to import and run here; returns a line per patch applied.

    Their packages import OpenAI's clip, mmcv (GCN layers of their style judge, off in KineMIC),
    einops, python-dotenv, wandb and a stray joblib name at import time, and read SMPL files at
    model build; none of it is used by the KineMIC step or by sampling hml_vec data. Their LoRA
    attention predates torch 2's keyword arguments.
    """
    from mdm_kinemic.mdm.upstream import clip_compat

    applied = []
    clip_compat.configure("random")
    clip_compat.install()
    applied.append("clip: mdm_kinemic.mdm.upstream.clip_compat (open_clip ViT-B/32, random weights, "
                   "fp16 after their convert_weights as OpenAI's)")

    def stub(name: str, **attrs: Any) -> None:
        module = types.ModuleType(name, "stand-in from benchmarks/bench_authors.py")
        module.__dict__.update(attrs)
        sys.modules[name] = module

    def unused(what: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"{what} is stubbed by bench_authors.py (their style judge / ST-GCN only)")
        return call

    if importlib.util.find_spec("mmcv") is None:
        stub("mmcv", __path__=[])
        stub("mmcv.cnn", build_activation_layer=unused("mmcv.cnn.build_activation_layer"),
             build_norm_layer=unused("mmcv.cnn.build_norm_layer"))
        stub("mmcv.utils", _BatchNorm=type("_BatchNorm", (), {}))
        stub("mmcv.runner", load_checkpoint=unused("mmcv.runner.load_checkpoint"))
        applied.append("mmcv.cnn, mmcv.utils._BatchNorm, mmcv.runner: stubs (mmcv not installed; used by their "
                       "GCN style judge only, off in KineMIC)")
    if importlib.util.find_spec("einops") is None:
        stub("einops", rearrange=unused("einops.rearrange"))
        applied.append("einops.rearrange: stub (einops not installed; used by their style judge and ST-GCN "
                       "collates only)")
    if importlib.util.find_spec("dotenv") is None:
        stub("dotenv", load_dotenv=lambda *args, **kwargs: False)
        applied.append("dotenv.load_dotenv: stub (python-dotenv not installed; used by their BERT encoder only)")

    try:
        from joblib.externals.cloudpickle import k  # noqa: F401
    except ImportError:
        import joblib

        stub("joblib.externals.cloudpickle", k=None)
        applied.append(f"joblib.externals.cloudpickle.k: stub (their train/training_loop.py's first line imports "
                       f"this unused name; joblib {joblib.__version__} has no externals.cloudpickle)")
    if importlib.util.find_spec("wandb") is None:
        stub("wandb")
        applied.append("wandb: empty module (not installed; their train_platforms.py imports it in a class body, "
                       "the benchmark uses their NoPlatform)")

    sys.path.insert(0, str(mdm_root))
    import model.adapters.loralib.layers as lora_layers
    from model.utils import rotation2xyz

    from mdm_kinemic.mdm.upstream.smpl_compat import SMPLUnavailable, smpl_files_present

    if not smpl_files_present(mdm_root):
        # Rotation2xyz builds SMPL in every MDM; hml_vec never calls it
        rotation2xyz.SMPL = lambda *args, **kwargs: SMPLUnavailable(str(mdm_root / "body_models" / "smpl"))
        applied.append("SMPL: mdm_kinemic.mdm.upstream.smpl_compat.SMPLUnavailable (no SMPL files; hml_vec "
                       "never calls it)")

    forward = lora_layers.MultiheadAttention.forward

    def torch2_forward(self: Any, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
                       need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                       is_causal: bool = False) -> Any:
        # torch 2's TransformerEncoderLayer passes these; their torch-1.x signature lacks them
        return forward(self, query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                       attn_mask=attn_mask)

    lora_layers.MultiheadAttention.forward = torch2_forward
    applied.append("their loralib MultiheadAttention.forward: drops torch 2's is_causal / average_attn_weights "
                   "keywords (written for torch 1.x)")
    return applied


def _authors_args(args: argparse.Namespace, work: Path, ckpt: Path,
                  diffusion_steps: int | None = None) -> argparse.Namespace:
    """Their training flags: their defaults plus what the benchmark fixes."""
    from utils import parser_util

    parser = argparse.ArgumentParser()
    for add in (parser_util.add_base_options, parser_util.add_data_options, parser_util.add_model_options,
                parser_util.add_diffusion_options, parser_util.add_training_options, parser_util.add_peft_options):
        add(parser)
    layers, latent_dim = SIZES[args.size]
    argv = ["--model_type", "KineMIC", "--save_dir", str(work / "authors_save"), "--starting_checkpoint", str(ckpt),
            "--batch_size", str(len(CLASS_NAMES) * SHOTS), "--peft", "LoRA", "--dww"]
    if layers is not None:
        argv += ["--layers", str(layers), "--latent_dim", str(latent_dim)]
    parsed = parser.parse_args(argv)
    if diffusion_steps is not None:
        parsed.diffusion_steps = diffusion_steps  # their parser limits the choice to 50/100/1000
    return parser_util.apply_rules(parser_util.Pfx.wrap_args_by_prefix(parsed))


def run_authors(args: argparse.Namespace, work: Path, ckpt: Path, batch_file: Path) -> dict[str, Any]:
    """Their KineMIC: build, train steps (memory), their step with text features, sampling."""
    mdm_root = Path(args.authors_root).resolve() / AUTHORS_MDM
    patches = _install_authors_patches(mdm_root)
    import numpy as np
    import torch
    from data_loaders.tensors import collate, dual_collate
    from diffusion import logger
    from model.wrappers import wrap_w_classifier_free_sampling
    from train.train_platforms import NoPlatform
    from train.training_loop import TrainLoop
    from utils import dist_util
    from utils.model_util import create_gaussian_diffusion, create_model_and_diffusion

    device = torch.device(args.device)
    dist_util.setup_dist((device.index or 0) if device.type == "cuda" else -1)  # their dev(): -1 = cpu
    logger.configure(dir=str(work / "authors_log"), format_strs=[])
    started = time.perf_counter()
    torch.manual_seed(0)
    np.random.seed(0)
    inputs = torch.load(batch_file)
    fargs = _authors_args(args, work, ckpt)
    streams = ["prior", "target"]
    # train/train_mdm.py: create_model_and_diffusion reads num_actions from each stream's dataset
    data = {s: types.SimpleNamespace(dataset=types.SimpleNamespace(num_actions=len(CLASS_NAMES))) for s in streams}
    model, diffusion = create_model_and_diffusion(fargs, data, streams)
    model.to(dist_util.dev())
    model.rot2xyz.smpl_model.eval()
    # their TrainLoop loads the checkpoint into each stream (load_model_wo_clip, LoRA on the target
    # stream), sets the gradients and the optimizer; its data loader only gives len(dataset) here
    loader = types.SimpleNamespace(dataset=[None] * len(inputs["labels"]))
    trainer = TrainLoop(fargs, NoPlatform(fargs.save_dir), model, diffusion, loader, "target")
    state = torch.load(ckpt, map_location="cpu")
    key = "seqTransEncoder.layers.0.linear1.weight"
    for stream in streams:
        if not torch.equal(model.streams[stream].get_parameter(key).detach().cpu(), state.get("model", state)[key]):
            raise RuntimeError(f"the random checkpoint did not load into their {stream} stream")
    del state

    # their dataset pads every motion to max_motion_length (196), then dual_collate
    def padded(motion: torch.Tensor) -> np.ndarray:
        out = np.zeros((MAX_FRAMES, 263), np.float32)
        out[: motion.shape[1]] = motion.T.numpy()
        return out

    items = []
    for i in range(len(inputs["labels"])):
        # Text2MotionDataset's and MixedTextAction2MotionDataset's __getitem__ tuples, as their collates read them
        prior = (None, None, inputs["captions"][i], None, padded(inputs["priors"][i]), inputs["priors"][i].shape[1],
                 None, f"prior_{i}")
        label = inputs["labels"][i]
        target = (None, None, inputs["prompts"][i], None, padded(inputs["targets"][i]),
                  inputs["targets"][i].shape[1], None, label, inputs["class_names"][label], "train", f"target_{i}")
        items.append((prior, target))
    (x_prior, c_prior), (x_target, c_target) = dual_collate(items, len(items), "mixed")
    batch = {"prior": x_prior.to(device), "target": x_target.to(device)}
    cond = {"prior": c_prior, "target": c_target}
    for stream in streams:  # TrainLoop.run_loop's move to the device
        cond[stream]["y"] = {k: v.to(device) if torch.is_tensor(v) else v for k, v in cond[stream]["y"].items()}

    def run_step(model_kwargs: dict[str, Any]) -> None:
        # TrainLoop.run_loop's body, without the data loader and the every-25-steps log dump
        trainer.diffusion.iteration = trainer.total_step()
        trainer.run_step(batch, model_kwargs)
        trainer.step += 1

    model.train()
    setup_s = time.perf_counter() - started
    held = _held(model)
    memory = _start_memory(device)
    step = _measure(lambda: run_step(cond), device, args.rounds, warm_up=True)
    memory = _end_memory(device, memory)

    # reference only, not their code: CLIP features passed in, as their sampling does
    with torch.no_grad():
        cached = {s: {"y": dict(cond[s]["y"], text_embed=model.streams[s].encode_text(cond[s]["y"]["text"]))}
                  for s in streams}
    step_with_text_features = _measure(lambda: run_step(cached), device, args.rounds, warm_up=True)

    # synthesis as their sample/generate.py: eval() (merges LoRA), CFG wrapper, p_sample_loop
    model.eval()
    sampling_model = wrap_w_classifier_free_sampling(model)
    actions = [i % len(CLASS_NAMES) for i in range(args.sample_motions)]

    def sample_kwargs() -> dict[str, Any]:
        from mdm_kinemic.core.mining import DEFAULT_PROMPT_TEMPLATE

        rows = [{"inp": torch.zeros(args.sample_frames), "tokens": None, "lengths": args.sample_frames,
                 "text": DEFAULT_PROMPT_TEMPLATE.format(label=CLASS_NAMES[a]), "action": a,
                 "action_text": CLASS_NAMES[a]} for a in actions]
        _, kwargs = collate(rows)
        kwargs["y"] = {k: v.to(device) if torch.is_tensor(v) else v for k, v in kwargs["y"].items()}
        kwargs["y"]["scale"] = torch.ones(len(rows), device=device) * GUIDANCE
        kwargs["y"]["text_embed"] = model.encode_text(kwargs["y"]["text"])
        return kwargs

    shape = (args.sample_motions, 263, 1, args.sample_frames)

    def sampler(steps: int) -> Callable[[], Any]:
        sample_diffusion = create_gaussian_diffusion(_authors_args(args, work, ckpt, steps), data)
        with torch.no_grad():
            kwargs = sample_kwargs()
        return lambda: sample_diffusion.p_sample_loop(
            sampling_model, shape, clip_denoised=False, model_kwargs=kwargs, skip_timesteps=0, init_image=None,
            progress=False, dump_steps=None, noise=None, const_noise=False)

    with torch.no_grad():
        _measure(sampler(2), device, 1, warm_up=False)
        sampling = _measure(sampler(args.sample_steps), device, args.sample_rounds, warm_up=False)
    return {
        "setup_s": setup_s,
        "held": held,
        "loss_terms": sorted(k for k in logger.get_current().name2val if "_q" not in k and k not in ("step", "samples")),
        "memory": memory,
        "step": step,
        "step_with_text_features": step_with_text_features,
        "sampling": {**sampling, "motions_per_second": args.sample_motions / sampling["median_s"]},
        "frames_per_stream": int(batch["target"].shape[-1]),
        "their_flags": {"diffusion_steps": fargs.diffusion_steps, "lambd": vars(fargs.lambd), "dww": fargs.dww,
                        "LoRA": vars(fargs.LoRA), "frozen": fargs.grad_cfg.frozen, "lr": fargs.lr,
                        "weight_decay": fargs.weight_decay, "grad_clip": fargs.grad_clip,
                        "cond_mask_prob": fargs.cond_mask_prob},
        "patches": patches,
        **_facts(),
    }


# -- child 2: ours ----------------------------------------------------------------------------------


def run_ours(args: argparse.Namespace, work: Path, ckpt: Path, batch_file: Path) -> dict[str, Any]:
    """Our KineMIC: build, train steps (memory), sampling."""
    import torch
    from torch import nn

    from mdm_kinemic.core.denoiser import frame_mask_from_lengths
    from mdm_kinemic.core.mic import MICModule
    from mdm_kinemic.core.objective import (
        KineMICBatch,
        KineMICObjective,
        ObjectiveSettings,
    )
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )
    from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
    from mdm_kinemic.mdm.model.lora import LoraSettings
    from mdm_kinemic.mdm.sampling.sampler import (
        BatchedGuidance,
        GuidedSampler,
        respaced_diffusion,
    )
    from mdm_kinemic.mdm.sampling.student import load_student
    from mdm_kinemic.mdm.upstream.locate import (
        import_train_loop_module,
        import_upstream,
    )
    from mdm_kinemic.training.settings import OptimSettings

    device = torch.device(args.device)
    import_upstream(clip_weights="random")
    upstream = import_train_loop_module()
    upstream.logger.configure(dir=str(work / "ours_log"), format_strs=[])
    started = time.perf_counter()
    torch.manual_seed(0)
    inputs = torch.load(batch_file)
    loaded = start_from_base(ckpt, KineMICModelSettings(num_actions=len(CLASS_NAMES), class_names=CLASS_NAMES),
                             LoraSettings(), clip_weights="random", device=device)
    model, diffusion = loaded.model, loaded.diffusion

    def stacked(motions: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([m.shape[1] for m in motions])
        x = torch.zeros(len(motions), 263, 1, int(lengths.max()))
        for i, m in enumerate(motions):
            x[i, :, 0, : m.shape[1]] = m
        return x.to(device), lengths.to(device)

    x_target, target_lengths = stacked(inputs["targets"])
    x_prior, prior_lengths = stacked(inputs["priors"])
    batch = KineMICBatch(x0_target=x_target, target_lengths=target_lengths,
                         target_action=torch.tensor(inputs["labels"], device=device), target_text=inputs["prompts"],
                         x0_prior=x_prior, prior_lengths=prior_lengths, prior_text=inputs["captions"])
    assert bool((frame_mask_from_lengths(target_lengths, x_target.shape[-1]).sum(-1) == target_lengths).all())
    # as run_fewshot_training: every text's CLIP features into the cache before the first step
    model.text_features(sorted(set(inputs["prompts"]) | set(inputs["captions"])))
    optim = OptimSettings()
    objective = KineMICObjective(model.student, model.teacher, MICModule(model.latent_dim), diffusion.q_sample,
                                 ObjectiveSettings()).to(device)
    params = model.trainable_parameters() + [p for p in objective.parameters() if p.requires_grad]
    mp_trainer = upstream.MixedPrecisionTrainer(model=nn.ParameterList(params), use_fp16=False)
    opt = torch.optim.AdamW(mp_trainer.master_params, lr=optim.lr, weight_decay=optim.weight_decay,
                            betas=(0.9, optim.adam_beta2))
    schedule_sampler = upstream.create_named_schedule_sampler("uniform", diffusion)
    step_index = [0]

    def run_step() -> None:
        # KineMICTrainLoop.forward_backward, then upstream's mp_trainer.optimize and log_step
        mp_trainer.zero_grad()
        t, _ = schedule_sampler.sample(x_target.shape[0], device)
        out = objective(batch, t)
        scalars = out.scalars()
        mp_trainer.backward(out.loss)
        scalars["grad_norm_before_clip"] = float(torch.nn.utils.clip_grad_norm_(params, optim.grad_clip))
        for key, value in scalars.items():
            upstream.logger.logkv_mean(key, value)
        upstream.log_loss_dict(diffusion, t, {"rec_target": out.rec_target.detach()})
        mp_trainer.optimize(opt)
        upstream.logger.logkv("step", step_index[0] + 1)
        upstream.logger.logkv("samples", (step_index[0] + 1) * x_target.shape[0])
        step_index[0] += 1

    model.train()
    setup_s = time.perf_counter() - started
    held = _held(nn.ModuleList([model, objective]))  # their KineMIC module holds its MIC module too
    memory = _start_memory(device)
    step = _measure(run_step, device, args.rounds, warm_up=True)
    memory = _end_memory(device, memory)

    # synthesis as mdm_kinemic.synth: the saved student, LoRA merged, guidance in one batch
    path = save_kinemic_checkpoint(work / "ours_kinemic", step_index[0], model)
    student = load_student(path, clip_weights="random", device=device)
    guided = BatchedGuidance(student.model, GUIDANCE)
    actions = torch.tensor([i % len(CLASS_NAMES) for i in range(args.sample_motions)])
    text = student.model.prompt_features()[actions]
    seeds = list(range(args.sample_motions))

    def sampler(steps: int) -> Callable[[], Any]:
        guided_sampler = GuidedSampler(guided, respaced_diffusion(student.args, str(steps)), "ddpm", device)
        return lambda: guided_sampler.sample(text, actions, args.sample_frames, seeds)

    _measure(sampler(2), device, 1, warm_up=False)
    sampling = _measure(sampler(args.sample_steps), device, args.sample_rounds, warm_up=False)
    return {
        "setup_s": setup_s,
        "held": held,
        "loss_terms": sorted(k for k in upstream.logger.get_current().name2val
                             if "_q" not in k and k not in ("step", "samples")),
        "memory": memory,
        "step": step,
        "sampling": {**sampling, "motions_per_second": args.sample_motions / sampling["median_s"]},
        "frames_per_stream": {"targets": int(x_target.shape[-1]), "priors": int(x_prior.shape[-1])},
        "base_diffusion_steps": int(student.args.diffusion_steps),
        **_facts(),
    }


# -- the parent: no torch here, so that at most one torch process runs at a time ------------------


def _child(args: argparse.Namespace, side: str, work: Path, extra: list[str]) -> dict[str, Any]:
    """Run this script as ``--side side``; its JSON (last stdout line), or exit with its stderr."""
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--work", str(work),
               "--authors_root", str(args.authors_root), "--size", args.size, "--device", args.device,
               "--rounds", str(args.rounds), "--target_frames", str(args.target_frames), "--prior_frames",
               str(args.prior_frames), "--sample_steps", str(args.sample_steps), "--sample_motions",
               str(args.sample_motions), "--sample_frames", str(args.sample_frames), "--sample_rounds",
               str(args.sample_rounds), *extra]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    run = subprocess.run(command, check=False, capture_output=True, text=True, cwd=work)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-STEP_LOG_LIMIT:])
        raise SystemExit(f"bench_authors.py: the {side} child failed (exit {run.returncode}); its stderr is above")
    result = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def _authors_commit(root: Path) -> dict[str, Any]:
    def git(*argv: str) -> str:
        run = subprocess.run(["git", "-C", str(root), *argv], check=False, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    return {"repository": AUTHORS_URL, "commit": git("rev-parse", "HEAD") or "unknown (not a git checkout)",
            "modified_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines())}


def _table(report: dict[str, Any]) -> str:
    """The markdown table of the report (every figure from the report itself)."""
    a, o, r, goals = report["authors"], report["ours"], report["ratios"], report["goals"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    memory_key = r["peak_memory_measure"]
    memory_name = "CUDA MiB" if memory_key == "peak_cuda_mib" else "RSS MiB"
    rows = [
        ("seconds per training step (wall, median)", f"{a['step']['median_s']:.2f}", f"{o['step']['median_s']:.2f}",
         f"{r['step_time']:.3f}", f"<= {GOAL_TIME}: {verdict(goals['step_time_met'])}"),
        ("CPU seconds per training step (median)", f"{a['step']['median_cpu_s']:.2f}",
         f"{o['step']['median_cpu_s']:.2f}", f"{r['step_cpu_time']:.3f}",
         f"<= {GOAL_TIME}: {verdict(goals['step_cpu_time_met'])}"),
        (f"peak memory of training ({memory_name})", f"{a['memory'][memory_key]:.0f}",
         f"{o['memory'][memory_key]:.0f}", f"{r['peak_memory']:.3f}",
         f"<= {GOAL_MEMORY}: {verdict(goals['peak_memory_met'])}"),
        ("memory after setup (RSS MiB)", f"{a['memory']['setup_rss_mib']:.0f}", f"{o['memory']['setup_rss_mib']:.0f}",
         f"{r['setup_memory']:.3f}", ""),
        ("synthesis, motions per second", f"{a['sampling']['motions_per_second']:.3f}",
         f"{o['sampling']['motions_per_second']:.3f}", f"{r['motions_per_second']:.2f}", "higher is better"),
        ("their step with CLIP features passed in (wall; reference)", f"{a['step_with_text_features']['median_s']:.2f}",
         f"{o['step']['median_s']:.2f}", f"{r['step_time_vs_their_step_with_text_features']:.3f}", ""),
    ]
    lines = ["| | authors | ours | ours / authors | goal |", "|---|---:|---:|---:|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--authors_root", required=True,
                   help=f"a checkout of the authors' code: git clone {AUTHORS_URL} DIR (never committed here)")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "authors.json"), help="JSON result file")
    p.add_argument("--rounds", type=int, default=3, help="timed training steps per side (after one warm-up step)")
    p.add_argument("--size", choices=tuple(SIZES), default="full",
                   help="full: humanml_trans_enc_512 (8 layers, latent 512); tiny: 2 layers, latent 64 (quick check)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads in each child (default: torch's)")
    p.add_argument("--target_frames", type=int, default=64, help="longest target (20 fps frames)")
    p.add_argument("--prior_frames", type=int, default=196, help="longest prior (HumanML3D's maximum 196)")
    p.add_argument("--sample_steps", type=int, default=50,
                   help="diffusion steps of synthesis on both sides (50: the authors' pre-trained schedule)")
    p.add_argument("--sample_motions", type=int, default=30, help="motions drawn in one batch per side")
    p.add_argument("--sample_frames", type=int, default=60, help="frames per drawn motion (20 fps)")
    p.add_argument("--sample_rounds", type=int, default=1, help="timed synthesis runs per side (median)")
    p.add_argument("--side", choices=("inputs", *SIDES), help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--batch", help=argparse.SUPPRESS)
    args = p.parse_args()
    root = Path(args.authors_root).expanduser()
    if not (root / AUTHORS_MARKER).is_file():
        p.error(f"--authors_root {args.authors_root}: no {AUTHORS_MARKER} there (their MDM fork). "
                f"Fix: git clone {AUTHORS_URL} {args.authors_root}")
    if args.rounds < 1 or args.sample_rounds < 1 or args.sample_steps < 2:
        p.error("--rounds and --sample_rounds must be >= 1, --sample_steps >= 2")
    if not 40 <= args.target_frames <= args.prior_frames <= MAX_FRAMES:
        p.error(f"need 40 <= --target_frames <= --prior_frames <= {MAX_FRAMES} (their dataset pads to {MAX_FRAMES})")
    if args.side:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        work = Path(args.work)
        # their code prints every step's windows; our JSON is the last line of stdout
        with contextlib.redirect_stdout(sys.stderr):
            if args.side == "inputs":
                result = write_inputs(args, work)
            elif args.side == "authors":
                result = run_authors(args, work, Path(args.checkpoint), Path(args.batch))
            else:
                result = run_ours(args, work, Path(args.checkpoint), Path(args.batch))
        print(json.dumps(result))
        return result

    args.authors_root = str(root.resolve())
    with tempfile.TemporaryDirectory(prefix="bench_authors_") as tmp:
        work = Path(tmp)
        inputs = _child(args, "inputs", work, [])
        files = ["--checkpoint", inputs["checkpoint"], "--batch", inputs["batch"]]
        sides = {side: _child(args, side, work, files) for side in SIDES}
    a, o = sides["authors"], sides["ours"]
    memory_key = "peak_cuda_mib" if "peak_cuda_mib" in a["memory"] else "peak_rss_mib"
    ratios = {
        "step_time": o["step"]["median_s"] / a["step"]["median_s"],
        "step_cpu_time": o["step"]["median_cpu_s"] / a["step"]["median_cpu_s"],
        "peak_memory": o["memory"][memory_key] / a["memory"][memory_key],
        "setup_memory": o["memory"]["setup_rss_mib"] / a["memory"]["setup_rss_mib"],
        "peak_memory_measure": memory_key,
        "motions_per_second": o["sampling"]["motions_per_second"] / a["sampling"]["motions_per_second"],
        "step_time_vs_their_step_with_text_features": o["step"]["median_s"] / a["step_with_text_features"]["median_s"],
    }
    layers, latent_dim = SIZES[args.size]
    flags = [f"--size {args.size}", f"--rounds {args.rounds}", f"--device {args.device}",
             f"--sample_steps {args.sample_steps}", f"--sample_motions {args.sample_motions}",
             f"--sample_frames {args.sample_frames}", f"--sample_rounds {args.sample_rounds}"]
    flags += [f"--threads {args.threads}"] if args.threads else []
    report = {
        "benchmark": "KineMIC: ours vs the authors' implementation, one training step, peak memory, synthesis",
        "command": " ".join(["python benchmarks/bench_authors.py --authors_root DIR", *flags]),
        "authors_code": {**_authors_commit(root), "patches": a.pop("patches")},
        "config": {
            "size": args.size, "layers": layers or 8, "latent_dim": latent_dim or 512,
            "checkpoint": "random weights, humanml_trans_enc_512 architecture (mdm_kinemic random_checkpoint), "
                          "CLIP ViT-B/32 random (open_clip)",
            "batch_pairs": len(CLASS_NAMES) * SHOTS, "classes": len(CLASS_NAMES), "target_frames": args.target_frames,
            "prior_frames": args.prior_frames, "rounds": args.rounds, "device": args.device,
            "sample_steps": args.sample_steps, "sample_motions": args.sample_motions,
            "sample_frames": args.sample_frames, "sample_rounds": args.sample_rounds, "guidance": GUIDANCE,
        },
        "authors": a,
        "ours": o,
        "ratios": ratios,
        "goals": {"step_time_max": GOAL_TIME, "peak_memory_max": GOAL_MEMORY,
                  "step_time_met": ratios["step_time"] <= GOAL_TIME,
                  "step_cpu_time_met": ratios["step_cpu_time"] <= GOAL_TIME,
                  "peak_memory_met": ratios["peak_memory"] <= GOAL_MEMORY},
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }
    table = _table(report)
    report["table"] = table
    print(table)
    print(f"\n{args.size} size ({report['config']['layers']} layers x {report['config']['latent_dim']}), "
          f"B = {report['config']['batch_pairs']} pairs, {args.device}, {a['threads']} threads; synthesis: "
          f"{args.sample_motions} motions x {args.sample_frames} frames, {args.sample_steps} steps, guidance {GUIDANCE}; "
          f"authors' commit {report['authors_code']['commit'][:7]}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
