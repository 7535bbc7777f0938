"""KineMIC fine-tuning on upstream MDM's TrainLoop: the subclass and the run that drives it.

``KineMICTrainLoop`` subclasses upstream's ``train.training_loop.TrainLoop`` and keeps what it does
well: the timestep sampler (``create_named_schedule_sampler('uniform')``), the
``diffusion.logger`` key-value logging with its per-quartile loss breakdown (``log_loss_dict``),
the logging platforms (``train.train_platforms``), the save cadence (every ``save_interval``
steps and at the end), ``run_step`` (forward_backward, optimise, EMA update, lr anneal, log) and
``update_average_model`` unchanged. It overrides, with identical signatures:

* ``__init__``: upstream's deep-copies the whole model for the EMA (CLIP and every base weight
  included), builds AdamW over every parameter, rounds num_steps up to whole epochs
  (``num_steps // len(data) + 1``), resumes with ``load_model_wo_clip`` (which rejects peft's
  renamed keys) and builds HumanML3D evaluators. Ours sets the same attributes, but the
  optimizer and the EMA cover the trainable parameters only (LoRA, action embedding, MIC module,
  a learnable temperature), and resuming reads KineMIC checkpoints.
* ``run_loop``: exactly ``num_steps`` optimizer steps (one batch = every target + its soft pairs),
  a tqdm bar with the loss terms, the per-step loss log, the save cadence.
* ``forward_backward``: the KineMIC objective (core/objective.py) instead of
  ``diffusion.training_losses``, then gradient clipping.
* ``save``, ``find_resume_checkpoint``, ``_load_and_sync_parameters``, ``_load_optimizer_state``:
  KineMIC checkpoints (adapters, action embedding, MIC; no CLIP, no base weight), the optimizer,
  and the run state (RNG states, batcher Generator, step) so that a resumed run repeats an
  uninterrupted one loss for loss.
* ``log_step``: logs the number of completed steps (upstream logs the 0-based step index).

Under ``torchrun --nproc_per_node N`` (data parallel, gloo) every rank builds the same global
batch from the same seeded batcher and computes the objective on its contiguous share of the
pairs (core/sharding.py: Eq. 1 sees every rank's priors, per-sample draws are the one-process
draws); gradients are averaged over the ranks before clipping, so every rank takes the same
step and the loss curve is the one-process run's with the same global batch (exactly so when the
network's own dropout is off; with it on, each rank draws its own dropout masks). Rank 0 alone
mines, writes checkpoints, logs and pictures; resuming works as in one process.

``run_fewshot_training(config)`` builds everything from a :class:`FewShotRunConfig` and runs it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import torch
from torch import nn

from mdm_kinemic.atomic import atomic_torch_save, atomic_write_text
from mdm_kinemic.core.kinematic_rerank import KinematicRerankSettings, rerank_markdown, rerank_report
from mdm_kinemic.core.mic import MICModule
from mdm_kinemic.core.mining import MiningResult, MiningSettings
from mdm_kinemic.core.objective import (
    KineMICObjective,
    ObjectiveOutput,
    ObjectiveSettings,
)
from mdm_kinemic.core.prompts import PromptAugmentationSettings, PromptSampler, prompt_sets
from mdm_kinemic.core.sharding import BatchShard, merge_shard_scalars, rank_shard, shard_bounds, shard_rows
from mdm_kinemic.distributed import Ranks, rank_device, torch_device
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings, set_network_dropout
from mdm_kinemic.mdm.upstream.options import UpstreamSettings
from mdm_kinemic.training.batching import FewShotBatcher, Normaliser, batch_to
from mdm_kinemic.training.run_state import (
    TRAIN_SECTION,
    LossLog,
    RunDirError,
    capture_rng_state,
    check_save_dir,
    checkpoint_paths,
    latest_complete_step,
    load_checkpoint_file,
    restore_rng_state,
    seed_everything,
)
from mdm_kinemic.training.settings import (
    FewShotDataSettings,
    LoggingSettings,
    NetworkSettings,
    NoiseSettings,
    OptimSettings,
    RunSettings,
)
from mdm_kinemic.training.soft_positives import MiningRunSettings

logger = logging.getLogger(__name__)

MINING_POOL_FILE = "mining_pool.json"
MINING_REPORT_FILE = "mining_report.txt"
RERANK_FILE = "kinematic_rerank.json"
RERANK_SUMMARY_FILE = "kinematic_rerank.md"
LOSS_LOG_FILE = "losses.jsonl"
PICTURE_DIR = "mining_pictures"
SUMMARY_FILE = "run_summary.json"


class NonFiniteLossError(RuntimeError):
    """The loss or its gradient turned NaN or infinite; the message names the step and the terms."""


class RunInputError(ValueError):
    """Inputs of a run that are missing or unusable, all of them in one message, each with where
    it goes and how to get it."""


@dataclass(frozen=True)
class FewShotRunConfig:
    """Every setting of a KineMIC fine-tuning run (``python -m mdm_kinemic.train_fewshot``).

    Attributes:
        run: checkpoint to start from, save_dir, device.
        upstream: upstream MDM root and CLIP weights.
        data: target few-shot set and source corpus.
        mining: prompts, k and mining unit (Sec. 4.1).
        mining_run: mining encoder, minimum similarity, embedding cache.
        lora: LoRA rank, alpha, dropout, placement.
        action_init: the action embedding's init ('normal' or the authors' 'randn').
        teacher_mode: the teacher's module mode ('eval' or the authors' 'train').
        objective: loss terms (Table 2 row), lambdas, condition dropout, Eq. 1 settings.
        noise: how a target and its prior are noised.
        optim: AdamW, steps, clipping, seed, EMA.
        logging: checkpoint and logging cadence, platform, pictures.
        rerank: kinematic re-ranking of the soft positives (default off).
        prompts: prompt augmentation of the student's text (default off).
        network: the transformer's own dropout while fine-tuning (default: the checkpoint's).
    """

    run: RunSettings
    upstream: UpstreamSettings
    data: FewShotDataSettings
    mining: MiningSettings
    mining_run: MiningRunSettings
    lora: LoraSettings
    action_init: str
    teacher_mode: str
    objective: ObjectiveSettings
    noise: NoiseSettings
    optim: OptimSettings
    logging: LoggingSettings
    rerank: KinematicRerankSettings = dataclasses.field(default_factory=KinematicRerankSettings)
    prompts: PromptAugmentationSettings = dataclasses.field(default_factory=PromptAugmentationSettings)
    network: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)

    def __post_init__(self) -> None:
        if self.prompts.prompt_augmentation and self.data.target_text != "prompt":
            raise ValueError("--prompt_augmentation draws the student's text from its class's prompts: it needs "
                             "--target_text prompt, not caption")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples become lists), stored as args.json's kinemic.train."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def with_absolute_paths(self) -> "FewShotRunConfig":
        """The same settings with every file path absolute (against the current directory), so
        that a run resumed from another directory compares equal. A --mdm_ckpt that is not an
        existing path is a checkpoint name under upstream's save/ and stays as given."""
        def absolute(path: Optional[str]) -> Optional[str]:
            return None if path is None else os.path.abspath(os.path.expanduser(path))

        ckpt = self.run.mdm_ckpt
        if os.path.exists(os.path.expanduser(ckpt)):
            ckpt = absolute(ckpt)
        data = self.data
        return dataclasses.replace(
            self,
            run=dataclasses.replace(self.run, mdm_ckpt=ckpt, save_dir=absolute(self.run.save_dir)),
            data=dataclasses.replace(
                data, target_data=absolute(data.target_data), source_data=absolute(data.source_data),
                class_names=absolute(data.class_names), norm_stats=absolute(data.norm_stats)),
            mining=dataclasses.replace(self.mining, ntu_metadata=absolute(self.mining.ntu_metadata)),
            mining_run=dataclasses.replace(self.mining_run, embedding_cache=absolute(self.mining_run.embedding_cache)),
            prompts=dataclasses.replace(self.prompts, paraphrases=absolute(self.prompts.paraphrases)),
        )


_LOOP_CLASS: Optional[type] = None


def kinemic_train_loop_class() -> type:
    """The KineMICTrainLoop class, a subclass of upstream's TrainLoop, built on first use.

    Raises:
        UpstreamNotFoundError: upstream MDM cannot be located (see mdm/upstream/locate.py).
    """
    global _LOOP_CLASS
    if _LOOP_CLASS is None:
        from mdm_kinemic.mdm.upstream.locate import (
            import_train_loop_module,
            import_upstream,
            upstream_state,
        )

        if upstream_state() is None:
            import_upstream()
        _LOOP_CLASS = _define_train_loop(import_train_loop_module())
    return _LOOP_CLASS


def _define_train_loop(upstream: types.ModuleType) -> type:
    TrainLoop = upstream.TrainLoop
    diffusion_logger = upstream.logger

    class KineMICTrainLoop(TrainLoop):
        """Upstream's TrainLoop running the KineMIC objective (see the module docstring).

        Args (upstream's signature):
            args: upstream's flag Namespace (the base checkpoint's args.json) with the training
                fields set (save_dir, lr, weight_decay, adam_beta2, num_steps, save_interval,
                log_interval, use_ema, avg_model_beta) and ``args.kinemic``, the
                :class:`FewShotRunConfig`, and ``args.kinemic_record``, the JSON facts recorded in
                args.json (class prompts, Mean/Std folder, target ids).
            train_platform: an upstream ``train.train_platforms`` platform.
            model: the DualStreamMDM (mdm/model/kinemic_mdm.py): student and teacher on one network.
            diffusion: upstream's SpacedDiffusion of the base checkpoint (its q_sample).
            data: the :class:`FewShotBatcher` (every target + one soft pair each per batch).
        """

        def __init__(self, args, train_platform, model, diffusion, data):
            config: FewShotRunConfig = args.kinemic
            self.args = args
            self.config = config
            self.record = dict(args.kinemic_record)
            self.dataset = args.dataset
            self.train_platform = train_platform
            self.model = model
            self.diffusion = diffusion
            self.cond_mode = model.mdm.cond_mode
            self.data = data
            self.batch_size = len(data.target_ids)
            self.microbatch = self.batch_size
            self.lr = args.lr
            self.log_interval = args.log_interval
            self.save_interval = args.save_interval
            self.resume_checkpoint = ""
            self.use_fp16 = False
            self.fp16_scale_growth = 1e-3
            self.weight_decay = args.weight_decay
            self.lr_anneal_steps = 0
            self.step = 0
            self.resume_step = 0
            self.global_batch = self.batch_size
            self.num_steps = args.num_steps
            self.num_epochs = self.num_steps  # one batch per epoch: every target at every step
            self.sync_cuda = torch.cuda.is_available()
            self.save_dir = args.save_dir
            self.overwrite = True
            self.device = next(model.parameters()).device
            self.ranks: Ranks = getattr(args, "kinemic_ranks", None) or Ranks()

            self.objective = KineMICObjective(
                model.student, model.teacher, MICModule(model.latent_dim), diffusion.q_sample, config.objective
            ).to(self.device)
            self.trainable_params = model.trainable_parameters() + [p for p in self.objective.parameters() if p.requires_grad]
            self.mp_trainer = upstream.MixedPrecisionTrainer(
                model=nn.ParameterList(self.trainable_params), use_fp16=False, fp16_scale_growth=self.fp16_scale_growth
            )
            self.model_avg = None
            if config.optim.use_ema:
                self.model_avg = nn.ParameterList(
                    [nn.Parameter(p.detach().clone(), requires_grad=False) for p in self.trainable_params]
                )
            self.model_for_eval = model
            self._mic_attention: list[torch.Tensor] = []
            self.objective.mic.register_forward_hook(self._remember_attention)
            self.last_output: Optional[ObjectiveOutput] = None
            self.last_batch = None
            #: this rank's rows of the current step's batch (run_loop sets it before run_step)
            self.shard: BatchShard = BatchShard.whole(self.global_batch)
            self.last_scalars: dict[str, float] = {}

            self._load_and_sync_parameters()
            # as DDP: every rank starts from rank 0's weights (and EMA)
            self.ranks.broadcast_tensors([*self.trainable_params, *(self.model_avg or [])])
            self.opt = torch.optim.AdamW(
                self.mp_trainer.master_params, lr=self.lr, weight_decay=self.weight_decay,
                betas=(0.9, config.optim.adam_beta2),
            )
            self.schedule_sampler_type = "uniform"
            self.schedule_sampler = upstream.create_named_schedule_sampler(self.schedule_sampler_type, diffusion)
            self.eval_wrapper, self.eval_data, self.eval_gt_data = None, None, None
            self.use_ddp = False
            self.ddp_model = self.model
            self.loss_log = LossLog(Path(self.save_dir) / LOSS_LOG_FILE, self.resume_step) if self.ranks.is_main else None
            if self.resume_step:
                # last: restoring the RNG states must follow every draw made while building
                self._load_optimizer_state()

        # -- resuming -------------------------------------------------------------------------

        def find_resume_checkpoint(self) -> Optional[str]:
            """Overrides TrainLoop.find_resume_checkpoint: the latest COMPLETE checkpoint's model file."""
            step = latest_complete_step(self.save_dir)
            return None if step is None else str(checkpoint_paths(self.save_dir, step)["model"])

        def _load_and_sync_parameters(self):
            """Overrides TrainLoop._load_and_sync_parameters: adapters, action embedding, MIC and EMA
            from the latest complete checkpoint in save_dir (the base weights are already loaded)."""
            # latest_complete_step reads every file of each checkpoint it checks: once is enough
            step = latest_complete_step(self.save_dir)
            if step is None:
                return
            path = str(checkpoint_paths(self.save_dir, step)["model"])
            payload = load_checkpoint_file(path)
            self.model.load_adapter_state_dict(payload, source=path)
            extra = payload.get("extra", {})
            self.objective.mic.load_state_dict(extra["mic"])
            self.objective.contrastive.load_state_dict(extra["contrastive"])
            if self.model_avg is not None:
                self.model_avg.load_state_dict(extra["ema"])
            self.resume_step = step
            logger.info("resuming from %s (step %d)", path, step)

        def _load_optimizer_state(self):
            """Overrides TrainLoop._load_optimizer_state: AdamW state, then the RNG states and the
            batcher's Generator as they were right after the checkpoint's step."""
            paths = checkpoint_paths(self.save_dir, self.resume_step)
            self.opt.load_state_dict(load_checkpoint_file(paths["opt"], map_location=self.device))
            state = load_checkpoint_file(paths["state"])
            self.data.load_state_dict(state["batcher"])
            restore_rng_state(state["rng"])
            _restore_own_cuda_rng(state, self.device)

        # -- one step ---------------------------------------------------------------------------

        def _remember_attention(self, module: nn.Module, inputs: Any, output: Any) -> None:
            # The objective calls the MIC module on the prior stream first (a^P of Eq. 2); the
            # pictures need that attention, which ObjectiveOutput does not return.
            self._mic_attention.append(output.attention.detach())

        def forward_backward(self, batch, cond):
            """Overrides TrainLoop.forward_backward: the KineMIC objective, then gradient clipping.

            Args:
                batch: core KineMICBatch on the device: this rank's rows ``self.shard`` of the
                    step's batch (targets, their soft pairs, texts, actions); all of it in one process.
                cond: the batch's BatchProvenance (clip ids, soft-pair records), kept for pictures.
            """
            self.mp_trainer.zero_grad()
            shard = self.shard
            size = shard.global_size
            # every per-sample draw is made for the whole batch (the same on every rank), then cut
            t, weights = self.schedule_sampler.sample(size, self.device)
            # the uniform sampler's importance weights are all 1: the objective takes none
            assert bool((weights == 1).all())
            noise_target = noise_prior = None
            if self.config.noise.shared_noise and batch.x0_prior is not None:
                frames = max(batch.x0_target.shape[-1], batch.x0_prior.shape[-1])
                noise = torch.randn(size, *batch.x0_target.shape[1:3], frames, device=self.device)
                noise_target = noise[..., : batch.x0_target.shape[-1]]
                noise_prior = noise[..., : batch.x0_prior.shape[-1]]
            t = shard_rows(t, shard)
            self._mic_attention.clear()
            out = self.objective(batch, t, shard_rows(noise_target, shard), shard_rows(noise_prior, shard), shard=shard)
            scalars = out.scalars()
            self._stop_if_not_finite(out.loss, scalars)
            self.mp_trainer.backward(out.loss)
            self.ranks.average_gradients(self.trainable_params)
            if self.config.optim.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(self.trainable_params, self.config.optim.grad_clip)
                scalars["grad_norm_before_clip"] = float(norm)
                self._stop_if_not_finite(norm, scalars)
            if self.ranks.world_size > 1:
                scalars = merge_shard_scalars(self.ranks.all_gather(scalars), shard.rank_sizes)
            for key, value in scalars.items():
                diffusion_logger.logkv_mean(key, value)
            t_all, rec_all = t, out.rec_target.detach()
            if self.ranks.world_size > 1:  # the quartile breakdown of the whole batch, as one process logs it
                parts = self.ranks.all_gather((t.cpu(), rec_all.cpu()))
                t_all, rec_all = (torch.cat([p[i] for p in parts]) for i in (0, 1))
            upstream.log_loss_dict(self.diffusion, t_all, {"rec_target": rec_all})
            self.last_output, self.last_batch, self.last_scalars = out, (batch, cond), scalars

        def _stop_if_not_finite(self, value: torch.Tensor, scalars: dict[str, float]) -> None:
            # before the optimizer step: the parameters and every saved checkpoint stay finite;
            # under torchrun the ranks agree first, so that all stop, not one amid a collective
            bad = torch.tensor([0.0 if bool(torch.isfinite(value)) else 1.0])
            if float(self.ranks.sum(bad)) > 0:
                last = latest_complete_step(self.save_dir)
                terms = ", ".join(f"{k} {v:.4g}" for k, v in scalars.items())
                raise NonFiniteLossError(
                    f"step {self.total_step() + 1}: the loss or its gradient is not finite ({terms}); the run "
                    f"stops without updating. {self.save_dir} keeps its last good checkpoint "
                    f"({'step ' + str(last) if last is not None else 'none yet'}). Fix: lower --lr or "
                    "--lambda_dist, or check the target and source clips")

        def log_step(self):
            """Overrides TrainLoop.log_step: logs completed steps (upstream: the 0-based index)."""
            diffusion_logger.logkv("step", self.total_step() + 1)
            diffusion_logger.logkv("samples", (self.total_step() + 1) * self.global_batch)

        def run_loop(self):
            """Overrides TrainLoop.run_loop: exactly num_steps steps, progress bar, loss log, saves."""
            from tqdm.auto import tqdm

            self.model.train()
            self.objective.train()
            main = self.ranks.is_main
            bar = tqdm(total=self.num_steps, initial=self.total_step(), unit="step", desc="KineMIC",
                       disable=not (self.config.logging.progress and main), dynamic_ncols=True)
            started, done = time.perf_counter(), 0
            while self.total_step() < self.num_steps:
                step_started = time.perf_counter()
                batch, provenance = self.data.next_batch()
                # each rank moves only its own rows to its device; the draws are made for the whole batch
                self.shard = rank_shard(self.ranks, batch.x0_target.shape[0])
                self.run_step(batch_to(batch.rows(self.shard), self.device), provenance)
                self.step += 1
                done += 1
                step = self.total_step()
                # wall time goes to the platform only: losses.jsonl must repeat exactly on resume
                diffusion_logger.logkv_mean("sec_per_step", time.perf_counter() - step_started)
                if main:
                    self.loss_log.append(step, self.last_scalars)
                bar.set_postfix(_postfix(self.last_scalars), refresh=False)
                bar.update(1)
                if step % self.log_interval == 0:
                    for key, value in diffusion_logger.get_current().dumpkvs().items():
                        if key in ("step", "samples") or "_q" in key:
                            continue
                        self.train_platform.report_scalar(name=key, value=value, iteration=step, group_name="Loss")
                if (step % self.save_interval == 0 or step == self.num_steps) and main:
                    self.save()
            bar.close()
            if main:
                self._write_summary(done, time.perf_counter() - started)
            self.ranks.barrier()

        # -- saving -----------------------------------------------------------------------------

        def save(self):
            """Overrides TrainLoop.save: model%09d.pt (adapters, action embedding, MIC, EMA; no CLIP,
            no base weight), opt%09d.pt, args.json, then train_state%09d.pt, which completes the
            checkpoint; then the mining pictures. Every file is written atomically."""
            from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
                save_kinemic_checkpoint,
            )

            step = self.total_step()
            extra: dict[str, nn.Module] = {"mic": self.objective.mic, "contrastive": self.objective.contrastive}
            if self.model_avg is not None:
                extra["ema"] = self.model_avg
            save_kinemic_checkpoint(self.save_dir, step, self.model, self.opt, extra_modules=extra)
            write_run_args(Path(self.save_dir), self.model, self.record)
            state = {
                "step": step,
                "rng": capture_rng_state(),
                **_own_cuda_rng(self.device),
                "batcher": self.data.state_dict(),
                "config": self.config.to_json(),
                "mining_pool": self.record["mining_pool"],
            }
            atomic_torch_save(checkpoint_paths(self.save_dir, step)["state"], state)
            self._save_mining_pictures(step)
            logger.info("saved checkpoint %s", checkpoint_paths(self.save_dir, step)["model"])

        def _save_mining_pictures(self, step: int) -> None:
            out, count = self.last_output, self.config.logging.num_mining_pictures
            if count == 0 or out is None or out.window is None or not self._mic_attention:
                return
            from mdm_kinemic.viz.mining_plot import plot_mining

            batch, provenance = self.last_batch
            attention = self._mic_attention[0].cpu()
            labels = batch.target_action.cpu().tolist()
            class_names = list(self.model.settings.class_names)
            for b in _spread_over_classes(labels, count):
                length = int(batch.prior_lengths[b])
                pair = provenance.soft_pairs[b]
                plot_mining(
                    attention[b, :length].tolist(), int(out.window.start[b]), int(out.window.length[b]),
                    pair.text, class_names[labels[b]],
                    Path(self.save_dir) / PICTURE_DIR / f"step{step:09d}_pair{b:02d}.png",
                    dww=float(out.dww[b]) if out.dww is not None else None, step=step, clip_id=pair.clip_id,
                )

        def _write_summary(self, steps: int, seconds: float) -> None:
            summary = {
                "steps_this_launch": steps,
                "resumed_from": self.resume_step,
                "total_steps": self.total_step(),
                "seconds": seconds,
                "seconds_per_step": seconds / steps if steps else None,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "device": str(self.device),
            }
            if self.device.type == "cuda":
                summary["peak_cuda_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            atomic_write_text(Path(self.save_dir) / SUMMARY_FILE, json.dumps(summary, indent=2))

    KineMICTrainLoop.__module__ = __name__
    KineMICTrainLoop.__qualname__ = "KineMICTrainLoop"
    return KineMICTrainLoop


def __getattr__(name: str) -> Any:
    if name == "KineMICTrainLoop":
        return kinemic_train_loop_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_POSTFIX_KEYS = (("loss", "loss"), ("rec_target", "recT"), ("contrastive", "con"), ("rec_window", "recW"),
                 ("distillation", "dist"), ("dww_mean", "dww"))


def _postfix(scalars: dict[str, float]) -> dict[str, str]:
    return {short: f"{scalars[key]:.4g}" for key, short in _POSTFIX_KEYS if key in scalars}


def _spread_over_classes(labels: list[int], count: int) -> list[int]:
    """Up to ``count`` batch indices, taking each class's first, second, ... target in turn."""
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    chosen: list[int] = []
    rank = 0
    while len(chosen) < min(count, len(labels)):
        for indices in by_class.values():
            if rank < len(indices) and len(chosen) < count:
                chosen.append(indices[rank])
        rank += 1
    return chosen


def write_run_args(save_dir: Path, model: nn.Module, record: dict[str, Any]) -> None:
    """args.json: the base checkpoint's args plus the kinemic section, with the run's record
    (kinemic.train settings, class_prompts, norm_stats, target ids) added to it."""
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        KINEMIC_SECTION,
        kinemic_section,
    )

    section = {**kinemic_section(model), **{k: v for k, v in record.items() if k != "mining_pool"}}
    args = {**model.upstream_args, KINEMIC_SECTION: section}
    atomic_write_text(save_dir / "args.json", json.dumps(args, indent=4, sort_keys=True))


def _mine(config: FewShotRunConfig, targets, source, save_dir: Path, device: torch.device) -> MiningResult:
    """Filter the source corpus, mine the top-k per class, write the mining report (once)."""
    from mdm_kinemic.core.mining import mine_soft_positives
    from mdm_kinemic.data.captions import caption_corpus
    from mdm_kinemic.text.cache import CachedTextEncoder
    from mdm_kinemic.text.encoder import get_text_encoder
    from mdm_kinemic.training.soft_positives import (
        apply_min_similarity,
        check_corpus,
        rerank_soft_positives,
        usable_captions,
    )

    corpus = caption_corpus(source)
    check_corpus(corpus, str(source.root))
    usable, report = usable_captions(corpus, source.length, config.data.min_prior_frames)
    check_corpus(usable, str(source.root))
    kwargs: dict[str, Any] = {"device": str(device)}
    if config.mining_run.mining_encoder == "clip":
        kwargs["weights"] = config.upstream.clip_weights
    encoder = get_text_encoder(config.mining_run.mining_encoder, **kwargs)
    cache = config.mining_run.embedding_cache or os.path.join(os.path.expanduser("~"), ".cache", "mdm_kinemic",
                                                              "text_embeddings")
    result = mine_soft_positives(targets.class_names, usable, CachedTextEncoder(encoder, cache), config.mining)
    result = apply_min_similarity(result, config.mining_run.min_similarity)
    if config.rerank.enabled:
        text_ranked = result
        result, reranks = rerank_soft_positives(result, targets.motions, targets.labels, source.motion, config.rerank)
        rerank = rerank_report(text_ranked, reranks, config.rerank)
        atomic_write_text(save_dir / RERANK_FILE, json.dumps(rerank, indent=1))
        atomic_write_text(save_dir / RERANK_SUMMARY_FILE, rerank_markdown(rerank))
        logger.info("kinematic re-ranking written to %s", save_dir / RERANK_SUMMARY_FILE)
    result.write_json(save_dir / MINING_POOL_FILE)
    reranked = [f"kinematic re-ranking ({config.rerank.kinematic_rerank}): kept {config.rerank.rerank_keep:g} of each "
                f"class's top-{config.mining.top_k}, see {RERANK_SUMMARY_FILE}"] if config.rerank.enabled else []
    text = "\n".join([*targets.summary(), *report.lines(), *reranked, "", result.table(rows=20)]) + "\n"
    atomic_write_text(save_dir / MINING_REPORT_FILE, text)
    logger.info("mining report written to %s", save_dir / MINING_REPORT_FILE)
    return result


def _prewarm_text_features(model: nn.Module, texts: list[str], chunk: int = 32) -> None:
    """Encode every text the run can condition on with the frozen CLIP once, in fixed chunks.

    The text cache then serves every step (steady seconds per step), and a resumed run encodes
    the same texts in the same chunks as the uninterrupted one, so even the last bits of the text
    features agree.
    """
    from tqdm.auto import tqdm

    unique = sorted(set(texts))
    if len(unique) > model.text_cache.capacity:
        logger.info("%d distinct texts exceed the text cache (%d): encoding them as they are drawn",
                    len(unique), model.text_cache.capacity)
        return
    started = time.perf_counter()
    for start in tqdm(range(0, len(unique), chunk), desc="CLIP text features", unit="chunk", leave=False):
        model.text_features(unique[start : start + chunk])
    logger.info("CLIP text features of %d texts in %.1f s", len(unique), time.perf_counter() - started)


def _platform(name: str, save_dir: Path):
    """An upstream logging platform writing to save_dir (train/train_platforms.py)."""
    from mdm_kinemic.mdm.upstream.locate import import_train_loop_module

    import_train_loop_module()
    platforms = sys.modules["train.train_platforms"]
    return getattr(platforms, name)(str(save_dir))


class RunInputs(NamedTuple):
    """The resolved inputs of a run (see :func:`check_run_inputs`)."""

    root: Path
    checkpoint: Path
    width: int
    norm: Any
    targets: Any


def check_run_inputs(config: FewShotRunConfig) -> RunInputs:
    """Check every input of a run before any expensive step, and report all problems at once.

    Checked, in this order: upstream MDM, the pre-trained checkpoint, the target clips (split,
    class names, feature width against the checkpoint's, finite frames, minimum length), the
    checkpoint's Mean/Std, the source corpus and the CLIP weights the run needs (the
    checkpoint's text encoder, the mining encoder). Nothing is written.

    Args:
        config: the run's settings, paths absolute.

    Returns:
        The resolved upstream root, checkpoint file, feature width, Mean/Std and targets.

    Raises:
        RunInputError: one message listing every missing or unusable input, each with its flag,
            where it goes and how to get it.
    """
    from mdm_kinemic.data.humanml3d import HumanML3D
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import read_checkpoint_args, resolve_checkpoint
    from mdm_kinemic.mdm.model.build import DATASET_FEATURES
    from mdm_kinemic.mdm.upstream.locate import import_upstream
    from mdm_kinemic.text.clip import RANDOM_WEIGHTS, resolve_clip_weights
    from mdm_kinemic.training.fewshot_targets import load_fewshot_targets
    from mdm_kinemic.training.norm_stats import resolve_norm_stats

    problems: list[str] = []

    def attempt(what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ValueError, FileNotFoundError) as err:
            problems.append(f"- {what}: {err}")
            return None

    root = attempt("upstream MDM (--mdm_root)",
                   lambda: import_upstream(config.upstream.mdm_root, clip_weights=config.upstream.clip_weights))
    checkpoint = args = width = norm = None
    if root is not None:
        checkpoint = attempt("pre-trained MDM (--mdm_ckpt)",
                             lambda: resolve_checkpoint(config.run.mdm_ckpt, config.upstream.mdm_root))
    if checkpoint is not None:
        args = attempt(f"the checkpoint's args.json ({checkpoint.parent})", lambda: read_checkpoint_args(checkpoint))
    targets = attempt("few-shot targets (--target_data, --fewshot_split, --class_names; the authors' NTU-VIBE "
                      "release and data/ntu_classes.txt: github LuCazzola/KineMIC)",
                      lambda: load_fewshot_targets(config.data, config.optim.seed))
    if args is not None:
        width = DATASET_FEATURES[args.dataset]
        widths = sorted({m.shape[1] for m in targets.motions if m.ndim == 2}) if targets is not None else []
        if widths and widths != [width]:
            problems.append(
                f"- feature width: the checkpoint {checkpoint} was trained on {args.dataset} ({width} features per "
                f"frame), the target clips in {config.data.target_data} have {widths}. Fix: a checkpoint of the "
                "targets' representation, or targets converted to the checkpoint's (python -m mdm_kinemic.data.convert)")
        else:
            norm = attempt("normalisation statistics (--norm_stats)",
                           lambda: resolve_norm_stats(config.data.norm_stats, vars(args), width, root))
    attempt("source corpus (--source_data, HumanML3D's layout)", lambda: HumanML3D(config.data.source_data).ids)
    needs_clip = (args is not None and getattr(args, "text_encoder_type", "clip") == "clip") or \
        config.mining_run.mining_encoder == "clip"
    if needs_clip and config.upstream.clip_weights != RANDOM_WEIGHTS:
        attempt("CLIP ViT-B/32 weights (--clip_weights)", lambda: resolve_clip_weights(config.upstream.clip_weights))
    if problems:
        raise RunInputError("the run cannot start; every missing or unusable input:\n" + "\n".join(problems))
    return RunInputs(root, checkpoint, width, norm, targets)


def run_fewshot_training(config: FewShotRunConfig) -> Path:
    """Fine-tune a pre-trained MDM with KineMIC on a few-shot target set (the paper's Sec. 4-5).

    Steps: check save_dir (new run, or resume of the same run), seed, read the targets and the
    source corpus, mine the soft positives and write the mining report (new runs; a resumed run
    reuses the pool stored with its checkpoint), build student and teacher from the base
    checkpoint, then run :class:`KineMICTrainLoop` for exactly ``num_steps`` steps.

    Args:
        config: every setting of the run.

    Returns:
        The run folder (save_dir).

    Raises:
        RunDirError, ValueError, FileNotFoundError: bad input, each with the file and the fix
            (see docs/train.md); upstream and checkpoint errors from mdm/.
    """
    from mdm_kinemic.data.humanml3d import MOTION_DIR, HumanML3D
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import start_from_base
    from mdm_kinemic.training.fewshot_targets import target_text

    config = config.with_absolute_paths()
    save_dir = Path(config.run.save_dir)
    ranks = Ranks.from_env()
    inputs = check_run_inputs(config)  # before anything is written or computed
    resume_step = ranks.on_main(lambda: _open_save_dir(save_dir, config))
    device = torch_device(rank_device(config.run.device, ranks))
    seed_everything(config.optim.seed)
    checkpoint_path, width, norm, targets = inputs.checkpoint, inputs.width, inputs.norm, inputs.targets
    shard_bounds(len(targets.ids), ranks.world_size)  # every rank needs a pair: refuse before mining
    source = HumanML3D(config.data.source_data)
    if resume_step:
        state = load_checkpoint_file(checkpoint_paths(save_dir, resume_step)["state"])
        mining = MiningResult.from_dict(state["mining_pool"])
    else:
        # rank 0 mines and writes the reports; every rank trains on the same pool
        mining = MiningResult.from_dict(ranks.on_main(lambda: _mine(config, targets, source, save_dir, device).to_dict()))
    # the mining encoder's construction draws random numbers on rank 0 only: every rank goes on
    # from rank 0's generators, as one process would
    synced = ranks.broadcast({"rng": capture_rng_state(), **_own_cuda_rng(device)})
    restore_rng_state(synced["rng"])
    _restore_own_cuda_rng(synced, device)
    text = target_text(targets, mining.prompts, config.data.target_text)
    sets = prompt_sets(targets.class_names, mining.prompts, config.prompts)
    pools = [mining.captions(c) for c in range(len(targets.class_names))]
    batcher = FewShotBatcher(
        targets.motions, targets.labels, text, targets.ids, pools, source.motion,
        Normaliser(norm.mean, norm.std), config.data.max_frames,
        pad_to=config.data.max_frames if config.data.pad_to_max_frames else None, seed=config.optim.seed,
        source_file=lambda clip_id: str(source.root / MOTION_DIR / f"{clip_id}.npy"),
        prompt_sampler=PromptSampler(sets, config.optim.seed) if config.prompts.prompt_augmentation else None,
    )
    model_settings = KineMICModelSettings(
        num_actions=len(targets.class_names), class_names=tuple(targets.class_names),
        action_init=config.action_init, teacher_mode=config.teacher_mode,
    )
    loaded = start_from_base(
        checkpoint_path, model_settings, config.lora, mdm_root=config.upstream.mdm_root,
        clip_weights=config.upstream.clip_weights, device=device, expected_features=width,
    )
    if config.network.network_dropout is not None:
        set_network_dropout(loaded.model, config.network.network_dropout)
    args = loaded.args
    optim, log_settings = config.optim, config.logging
    for key, value in {
        "save_dir": str(save_dir), "lr": optim.lr, "weight_decay": optim.weight_decay, "adam_beta2": optim.adam_beta2,
        "num_steps": optim.num_steps, "save_interval": log_settings.save_interval,
        "log_interval": log_settings.log_interval, "use_ema": optim.use_ema, "avg_model_beta": optim.avg_model_beta,
        "batch_size": len(targets.ids), "seed": optim.seed, "resume_checkpoint": "", "lr_anneal_steps": 0,
        "eval_during_training": False, "gen_during_training": False, "overwrite": True,
        "train_platform_type": log_settings.train_platform_type,
    }.items():
        setattr(args, key, value)
    args.kinemic = config
    args.kinemic_record = {
        TRAIN_SECTION: config.to_json(),
        "class_prompts": [p[0] for p in mining.prompts],
        **({"class_prompt_sets": [list(s) for s in sets]} if config.prompts.prompt_augmentation else {}),
        "norm_stats": str(norm.folder),
        "target_ids": list(targets.ids),
        "mining_pool": mining.to_dict(),
    }
    args.kinemic_ranks = ranks
    if ranks.is_main:
        write_run_args(save_dir, loaded.model, args.kinemic_record)
    prior_texts = [c.text for pool in pools for c in pool] if config.objective.uses_prior else []
    _prewarm_text_features(loaded.model, [*text, *(p for s in sets for p in s), *prior_texts])

    from diffusion import logger as diffusion_logger

    diffusion_logger.configure(dir=str(save_dir), format_strs=["log"] if ranks.is_main else [],
                               log_suffix=f"_from{resume_step or 0:09d}")
    platform = _platform(log_settings.train_platform_type if ranks.is_main else "NoPlatform", save_dir)
    platform.report_args(config.to_json(), name="Args")
    try:
        loop = kinemic_train_loop_class()(args, platform, loaded.model, loaded.diffusion, batcher)
        if loop.total_step() >= optim.num_steps:
            logger.info("%s already holds step %d >= --num_steps %d: nothing to do", save_dir, loop.total_step(),
                        optim.num_steps)
        loop.run_loop()
    finally:
        platform.close()
        ranks.close()
    return save_dir


def _own_cuda_rng(device: torch.device) -> dict[str, Any]:
    """{"cuda_own": the generator state of ``device``} on CUDA, else {}. Under torchrun each rank
    draws on its own GPU, so rank 0's cuda:0 state is what every rank's GPU must continue from
    (capture_rng_state's per-index states would hand rank r rank 0's untouched cuda:r)."""
    return {"cuda_own": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}


def _restore_own_cuda_rng(state: dict[str, Any], device: torch.device) -> None:
    if "cuda_own" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_own"], device)


def _open_save_dir(save_dir: Path, config: FewShotRunConfig) -> Optional[int]:
    """Create save_dir and decide new run or resume (:func:`check_save_dir`); a folder created
    here is removed again when it is refused."""
    created = not save_dir.exists()
    save_dir.mkdir(parents=True, exist_ok=True)
    try:
        return check_save_dir(save_dir, config.to_json())
    except RunDirError:
        if created:
            save_dir.rmdir()
        raise
