"""Settings of a KineMIC fine-tuning run that belong to no single method component.

The method's own settings live with their code (LoRA: mdm.lora, mining: core.mining, loss
weights and the objective: core.objective); these dataclasses hold the run (paths, device,
checkpoint cadence), the optimisation (AdamW, steps, clipping) and the few-shot data. Each field's
help names its default's source: the paper (arXiv 2512.11654), DESIGN.md's table for points
where the paper is silent, or upstream MDM (train/training_loop.py, utils/parser_util.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from mdm_kinemic.flags import device_field, parse_device

PLATFORMS = ("TensorboardPlatform", "NoPlatform", "ClearmlPlatform", "WandBPlatform")


def _check(condition: bool, name: str, accepted: str, value: object) -> None:
    if not condition:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")


@dataclass(frozen=True)
class RunSettings:
    """Where the run reads its model and writes its outputs."""

    mdm_ckpt: str = field(metadata={"help": "pre-trained MDM checkpoint: a name under upstream's save/ "
                                            "(e.g. humanml_trans_enc_512), a folder, or a model*.pt file, "
                                            "with args.json beside it. The teacher G^P and the student's "
                                            "base (paper Sec. 4)"})
    save_dir: str = field(default="", metadata={"help": "run folder: args.json, checkpoints, mining report, "
                                                        "pictures, TensorBoard events; a folder holding this run's "
                                                        "args.json is resumed from its latest checkpoint. Empty: "
                                                        "upstream's save/kinemic_<checkpoint name>"})
    device: str = device_field()

    def __post_init__(self) -> None:
        _check(bool(self.mdm_ckpt), "mdm_ckpt", "a checkpoint name, folder or file", self.mdm_ckpt)
        _check(bool(self.save_dir), "save_dir", "a folder path", self.save_dir)
        object.__setattr__(self, "device", parse_device(self.device))


@dataclass(frozen=True)
class OptimSettings:
    """The optimisation: AdamW over the trainable parameters only (LoRA, action embedding, MIC)."""

    num_steps: int = field(default=5000, metadata={
        "help": "optimizer steps, exactly (paper Sec. 5: 5000; the authors' docs: 10000)"})
    lr: float = field(default=2e-5, metadata={"help": "AdamW learning rate, constant, no warm-up (paper Sec. 5)"})
    weight_decay: float = field(default=1e-5, metadata={
        "help": "AdamW weight decay (paper silent; the authors' code: 1e-5)"})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2 (upstream MDM's default)"})
    grad_clip: float = field(default=1.0, metadata={
        "help": "clip the gradient's global L2 norm to this value; 0 disables (paper Sec. 5)"})
    seed: int = field(default=10, metadata={
        "help": "seed of every random draw: soft pairs, timesteps, noise, condition and LoRA dropout "
                "(upstream MDM's default 10)"})
    use_ema: bool = field(default=False, metadata={
        "help": "keep an exponential moving average of the trainable parameters only (upstream's "
                "--use_ema, without CLIP or base weights)"})
    avg_model_beta: float = field(default=0.9999, metadata={"help": "EMA decay (upstream MDM's default)"})

    def __post_init__(self) -> None:
        _check(self.num_steps >= 1, "num_steps", "an integer >= 1", self.num_steps)
        _check(self.lr > 0, "lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        _check(0 < self.adam_beta2 < 1, "adam_beta2", "in (0, 1)", self.adam_beta2)
        _check(self.grad_clip >= 0, "grad_clip", ">= 0 (0 disables clipping)", self.grad_clip)
        _check(0 < self.avg_model_beta < 1, "avg_model_beta", "in (0, 1)", self.avg_model_beta)


@dataclass(frozen=True)
class NetworkSettings:
    """The pre-trained MDM's own regularisation while it is fine-tuned."""

    network_dropout: Optional[float] = field(default=None, metadata={
        "help": "dropout of the MDM transformer (positional encoding, attention, feed-forward) while "
                "fine-tuning, LoRA's own excluded (--lora_dropout); default: the checkpoint's, which "
                "upstream's get_model_args fixes at 0.1. 0 makes a step depend only on its drawn t, noise "
                "and condition dropout, e.g. to check that torchrun ranks train as one process"})

    def __post_init__(self) -> None:
        if self.network_dropout is not None:
            _check(0 <= self.network_dropout < 1, "network_dropout", "in [0, 1)", self.network_dropout)


@dataclass(frozen=True)
class NoiseSettings:
    """How the forward diffusion noises a target and its prior (DESIGN.md: "t and noise per pair")."""

    shared_noise: bool = field(default=False, metadata={
        "help": "give a target and its prior the same Gaussian noise, frame by frame from the first "
                "frame (the authors' code); by default the noise is independent and only the diffusion "
                "step t is shared per pair"})


@dataclass(frozen=True)
class LoggingSettings:
    """Checkpoint and logging cadence (upstream TrainLoop's save_interval / log_interval)."""

    save_interval: int = field(default=500, metadata={
        "help": "write a checkpoint (adapters, action embedding, MIC, optimizer, RNG states) and the "
                "mining pictures every N steps and at the last step (the authors' default 500)"})
    log_interval: int = field(default=25, metadata={
        "help": "average the loss terms over N steps and report them to the logging platform "
                "(the authors' default 25)"})
    train_platform_type: Literal[PLATFORMS] = field(default="TensorboardPlatform", metadata={  # type: ignore[valid-type]
        "help": "upstream's logging platform for the scalars (every loss term, mean dww, mined "
                "window start and length); TensorBoard events go to save_dir"})
    num_mining_pictures: int = field(default=3, metadata={
        "help": "target-prior pairs drawn as mining pictures (prior attention over frames, mined "
                "window shaded; the paper's MIC figure) at every save; 0 disables"})
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar with the loss terms"})

    def __post_init__(self) -> None:
        _check(self.save_interval >= 1, "save_interval", "an integer >= 1", self.save_interval)
        _check(self.log_interval >= 1, "log_interval", "an integer >= 1", self.log_interval)
        _check(self.train_platform_type in PLATFORMS, "train_platform_type", " or ".join(PLATFORMS),
               self.train_platform_type)
        _check(self.num_mining_pictures >= 0, "num_mining_pictures", ">= 0", self.num_mining_pictures)


@dataclass(frozen=True)
class FewShotDataSettings:
    """The target few-shot set and the source (prior) corpus, both in HumanML3D layout."""

    target_data: str = field(default="", metadata={
        "help": "target dataset folder in HumanML3D layout with labels.txt/classes.txt, or the "
                "authors' NTU-VIBE release (splits/fewshot/...). Empty: upstream's dataset/NTU-VIBE"})
    source_data: str = field(default="", metadata={
        "help": "source (prior) corpus folder in HumanML3D layout: new_joint_vecs/ and texts/ with "
                "captions, mined for soft positives (paper Sec. 4.1: HumanML3D). Empty: upstream's "
                "dataset/HumanML3D"})
    fewshot_split: Optional[str] = field(default="S0000", metadata={
        "help": "few-shot split id under target_data/splits/fewshot/ (the authors' S0000: NTU A099, "
                "A102, A104, 10 shots); 'none' to draw --classes/--shots instead"})
    task_split: str = field(default="xsub", metadata={
        "help": "task split folder inside the few-shot split (the authors' xsub)"})
    classes: tuple[int, ...] = field(default=(), metadata={
        "help": "class indices to draw --shots clips of with --seed (used when --fewshot_split none)"})
    shots: int = field(default=10, metadata={
        "help": "clips per class (paper Sec. 5: 10); with a split, a class with fewer is an error"})
    class_names: Optional[str] = field(default=None, metadata={
        "help": "file with one class name per line (line i = class i) overriding the target data's "
                "classes.txt / ntu_classes.txt"})
    norm_stats: Optional[str] = field(default=None, metadata={
        "help": "folder with the Mean.npy/Std.npy the checkpoint was trained with (HumanML3D's); "
                "default: the checkpoint's data_dir, else upstream's dataset/HumanML3D, else (263 features) "
                "HumanML3D's, shipped with the package"})
    max_frames: int = field(default=196, metadata={
        "help": "longest motion in frames at 20 fps; longer clips are randomly cropped (upstream "
                "HumanML3D's max_motion_length)"})
    min_prior_frames: int = field(default=40, metadata={
        "help": "source captions whose clip or #start#end sub-span is shorter are not mined "
                "(upstream HumanML3D's min_motion_len; the authors' sub-spans: 40-199 frames)"})
    target_text: Literal["prompt", "caption"] = field(default="prompt", metadata={
        "help": "student text condition c^T: the class label prompt (paper Sec. 4) or the target "
                "clip's own caption from texts/ (the authors' mixed mode)"})
    pad_to_max_frames: bool = field(default=False, metadata={
        "help": "pad every batch to max_frames as upstream's HumanML3D loader does, instead of to "
                "the longest clip of the batch; matters for checkpoints trained without "
                "--mask_frames, whose attention sees padded frames"})

    def __post_init__(self) -> None:
        _check(bool(self.target_data), "target_data", "a folder path", self.target_data)
        _check(bool(self.source_data), "source_data", "a folder path", self.source_data)
        _check(self.fewshot_split is not None or len(self.classes) > 0, "classes",
               "at least one class index when --fewshot_split is none", self.classes)
        _check(all(c >= 0 for c in self.classes), "classes", "class indices >= 0", self.classes)
        _check(len(set(self.classes)) == len(self.classes), "classes", "distinct class indices", self.classes)
        _check(self.shots >= 1, "shots", "an integer >= 1", self.shots)
        _check(1 <= self.max_frames <= 196, "max_frames", "in [1, 196] (MDM's HumanML3D limit)", self.max_frames)
        _check(1 <= self.min_prior_frames <= self.max_frames, "min_prior_frames",
               "in [1, max_frames]", self.min_prior_frames)
        _check(self.target_text in ("prompt", "caption"), "target_text", "prompt or caption", self.target_text)
