"""Training and testing one ST-GCN recogniser under a HarProtocol (one seed)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mdm_kinemic.distributed import torch_device
from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.preprocess import (
    eval_sample_indices,
    fit_persons,
    gcn_batch,
    pre_normalize,
    uniform_sample_indices,
)
from mdm_kinemic.har.protocol import HarProtocol
from mdm_kinemic.har.skeleton import layout_for_joints
from mdm_kinemic.har.stgcn import STGCN, TEMPORAL_KERNEL

logger = logging.getLogger(__name__)


#: cuBLAS needs a fixed workspace for deterministic results (CUDA >= 10.2; PyTorch's
#: "Reproducibility" notes); without it use_deterministic_algorithms raises on CUDA matmuls.
CUBLAS_WORKSPACE = ":4096:8"


def enable_deterministic_algorithms() -> None:
    """Make torch use deterministic algorithms only, and cuDNN neither benchmark nor pick
    non-deterministic kernels, so that a seed repeats its CUDA run (for the whole process).

    Sets $CUBLAS_WORKSPACE_CONFIG (unless set) to ``:4096:8``; it must be in place before CUDA's
    first matmul, so call this before the first CUDA work of the process.
    """
    import torch.backends.cudnn as cudnn

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False


@contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """``enable_deterministic_algorithms`` within the block; the previous settings come back
    afterwards. ``enabled=False`` changes nothing."""
    if not enabled:
        yield
        return
    import torch.backends.cudnn as cudnn

    before = (torch.are_deterministic_algorithms_enabled(), cudnn.deterministic, cudnn.benchmark)
    enable_deterministic_algorithms()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        cudnn.deterministic, cudnn.benchmark = before[1], before[2]


def cosine_lr(base_lr: float, iteration: int, total_iterations: int) -> float:
    """Per-iteration cosine annealing to 0 (PYSKL lr_config CosineAnnealing, min_lr 0, by_epoch False)."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * iteration / total_iterations))


@dataclass
class TrainedSTGCN:
    """A trained recogniser and its protocol, ready to classify or embed clips.

    Attributes:
        model: the ST-GCN (eval mode after training).
        class_names: the K classes of its head, in logit order.
        protocol: the protocol it was trained under (clip_len, test_clips, prenorm).
        seed: training seed.
        epoch_test_top1: test top-1 (%) after each epoch when tracked, else empty.
        train_seconds: wall time of the training loop.
        epochs: epochs trained (``protocol.epochs`` raised by ``protocol.min_iterations``).
        iterations: SGD iterations trained.
        epoch_log: one dict per epoch: ``epoch`` (1-based), ``loss`` (mean training loss),
            ``lr`` (learning rate of the epoch's last iteration), ``iterations`` (done so far),
            and ``test_top1`` (%) when tracked.
    """

    model: STGCN
    class_names: tuple[str, ...]
    protocol: HarProtocol
    seed: int
    epoch_test_top1: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    epochs: int = 0
    iterations: int = 0
    epoch_log: list[dict] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def embed(self, clips: SkeletonClips, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and pooled features of clips, with deterministic test-time sampling.

        Args:
            clips: labelled clips with the model's joint count (labels are not used).
            batch_size: clips per forward pass.

        Returns:
            (probabilities [N, K], features [N, 256]), each averaged over ``protocol.test_clips``
            uniformly sampled clips per sample (softmax averaged, as PYSKL's 'prob').

        Raises:
            ValueError: clips with another joint count than the model's, or shorter than 9 frames.
        """
        if len(clips) == 0:
            raise ValueError(f"{clips.source}: no clips to classify")
        if clips.num_joints != self.model.layout.num_joints:
            raise ValueError(
                f"{clips.source}: clips have {clips.num_joints} joints but the recogniser was trained on "
                f"{self.model.layout.num_joints} ({self.model.layout.name})"
            )
        clips.check_min_frames(TEMPORAL_KERNEL)
        was_training = self.model.training
        self.model.eval()
        persons, prenorm = self.protocol.persons, self.protocol.prenorm
        prepared = [fit_persons(pre_normalize(j, self.model.layout, prenorm), persons) for j in clips.joints]
        nc, length = self.protocol.test_clips, self.protocol.clip_len
        probs, feats = [], []
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start : start + batch_size]
            windows = [eval_sample_indices(c.shape[1], length, nc) for c in chunk]
            x = gcn_batch([c for c in chunk for _ in range(nc)], [w for ws in windows for w in ws])
            f, logits = self.model.features_and_logits(torch.from_numpy(x).to(self.device))
            probs.append(logits.softmax(dim=-1).view(len(chunk), nc, -1).mean(dim=1).cpu().numpy())
            feats.append(f.view(len(chunk), nc, -1).mean(dim=1).cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(probs), np.concatenate(feats)

    def predict(self, clips: SkeletonClips, batch_size: int = 64) -> np.ndarray:
        """Predicted class index per clip, int64 [N] (indices into ``class_names``)."""
        return self.embed(clips, batch_size)[0].argmax(axis=1)


def top1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float(100.0 * np.mean(np.asarray(predictions) == np.asarray(labels)))


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's clip indices drawn with replacement, each class equally likely.

    Args:
        labels: int array [N], the class of each training clip.
        rng: the run's generator (one draw of N indices).

    Returns:
        int array [N]: indices into the clips; clip i is drawn with probability
        1 / (K * size of its class), K the number of classes present.
    """
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = 1.0 / (len(classes) * counts[inverse])
    return rng.choice(len(labels), size=len(labels), replace=True, p=weights / weights.sum())


def train_stgcn(
    train: SkeletonClips,
    protocol: HarProtocol,
    seed: int,
    device: str | torch.device = "cpu",
    test: SkeletonClips | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    max_batches: int | None = None,
) -> TrainedSTGCN:
    """Train ST-GCN on ``train`` for ``protocol.schedule(len(train))`` epochs with one seed.

    SGD (lr, momentum, Nesterov, weight decay from the protocol), cross-entropy, batches of
    ``protocol.batch_size`` clips reshuffled each epoch, each clip uniformly resampled to
    ``protocol.clip_len`` frames every time it is drawn, learning rate annealed per iteration
    by cosine to 0. Clips are pre-normalised once and given ``protocol.persons`` bodies. The seed fixes the weights' initialisation,
    the shuffling and the frame sampling, so a seed reproduces its run on the same device.

    Args:
        train: labelled clips; labels index ``train.class_names`` (the head's classes).
        protocol: the HAR protocol.
        seed: the run's seed.
        device: where to train ('cpu', 'cuda', 'auto').
        test: when given and ``protocol.track_max_over_epochs``, tested after every epoch
            (for the authors' max-over-epochs column only; nothing is selected on it).
        on_epoch: called with each epoch's record (``TrainedSTGCN.epoch_log``) after that epoch.
        max_batches: stop each epoch after this many batches (benchmarks only).

    Returns:
        TrainedSTGCN in eval mode.

    Raises:
        ValueError: empty set, unknown joint count, clips shorter than the temporal kernel.
    """
    if len(train) == 0:
        raise ValueError(f"{train.source}: the training set is empty")
    train.check_min_frames(TEMPORAL_KERNEL)
    layout = layout_for_joints(train.num_joints)
    device = torch_device(device) if isinstance(device, str) else device
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = STGCN(layout, num_classes=len(train.class_names), base_channels=protocol.base_channels).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=protocol.lr,
        momentum=protocol.momentum,
        weight_decay=protocol.weight_decay,
        nesterov=protocol.nesterov,
    )
    loss_fn = nn.CrossEntropyLoss()
    prepared = [fit_persons(pre_normalize(j, layout, protocol.prenorm), protocol.persons) for j in train.joints]
    labels = torch.from_numpy(train.labels)
    epochs, total = protocol.schedule(len(prepared), max_batches)
    batches_per_epoch = total // epochs
    result = TrainedSTGCN(model, train.class_names, protocol, seed, epochs=epochs, iterations=total)
    track = test is not None and protocol.track_max_over_epochs
    started = time.perf_counter()
    iteration = 0
    for epoch in range(epochs):
        model.train()
        order = balanced_order(train.labels, rng) if protocol.balanced_batches else rng.permutation(len(prepared))
        losses: list[float] = []
        lr = protocol.lr
        for b in range(batches_per_epoch):
            idx = order[b * protocol.batch_size : (b + 1) * protocol.batch_size]
            frames = [uniform_sample_indices(prepared[i].shape[1], protocol.clip_len, rng) for i in idx]
            x = torch.from_numpy(gcn_batch([prepared[i] for i in idx], frames)).to(device)
            lr = cosine_lr(protocol.lr, iteration, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(x), labels[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            iteration += 1
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": lr, "iterations": iteration}
        if track:
            result.epoch_test_top1.append(top1(result.predict(test), test.labels))
            record["test_top1"] = result.epoch_test_top1[-1]
        result.epoch_log.append(record)
        logger.debug("seed %d epoch %d/%d loss %.4f", seed, epoch + 1, epochs, record["loss"])
        if on_epoch is not None:
            on_epoch(record)
    result.train_seconds = time.perf_counter() - started
    model.eval()
    return result

