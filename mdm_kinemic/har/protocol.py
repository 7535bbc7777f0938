"""HarProtocol: the downstream HAR training and testing protocol, as one validated dataclass.

Defaults are the paper's (Sec. 5): ST-GCN trained for 80 epochs, batch 64, SGD lr 0.1 momentum 0.9
weight decay 5e-4, cosine annealing, 5 seeds, top-1 on the test split at the final epoch. Where
the paper is silent, PYSKL's ST-GCN config decides (Nesterov momentum, per-iteration cosine to 0,
clip_len 100, one test clip as in its validation pipeline).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mdm_kinemic.flags import add_dataclass_options, given_values
from mdm_kinemic.har.preprocess import PRENORM_MODES
from mdm_kinemic.har.stgcn import TEMPORAL_KERNEL


@dataclass(frozen=True)
class HarProtocol:
    """Settings of one HAR evaluation; every field becomes a CLI flag of ``mdm_kinemic.har.evaluate``.

    Raises:
        ValueError: from ``__post_init__``, naming the field and the accepted values.
    """

    seeds: int = field(default=5, metadata={"help": "number of training seeds; the summary is over seeds"})
    first_seed: int = field(default=0, metadata={"help": "seeds are first_seed, first_seed + 1, ..."})
    epochs: int = field(default=80, metadata={"help": "training epochs; accuracy is taken after the last one"})
    min_iterations: int = field(
        default=0,
        metadata={
            "help": "train for at least this many SGD iterations: epochs are raised to whole epochs reaching it, so "
            "that a 30-clip set gets as many updates as a 1,200-clip one (0: epochs alone decide)"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "clips per SGD step"})
    lr: float = field(default=0.1, metadata={"help": "initial SGD learning rate, annealed by cosine to 0 per iteration"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=5e-4, metadata={"help": "SGD weight decay"})
    nesterov: bool = field(default=True, metadata={"help": "Nesterov momentum (PYSKL's ST-GCN config)"})
    base_channels: int = field(
        default=64, metadata={"help": "ST-GCN width of the first stage, doubled at blocks 5 and 8 (PYSKL: 64)"}
    )
    clip_len: int = field(default=100, metadata={"help": "frames uniformly sampled per clip (PYSKL UniformSample)"})
    test_clips: int = field(
        default=1, metadata={"help": "uniform clips per test sample, softmax-averaged (PYSKL: 1 in val, 10 in test)"}
    )
    persons: int = field(
        default=1,
        metadata={
            "help": "bodies per clip fed to ST-GCN (PYSKL FormatGCNInput num_person): clips with more keep their first "
            "ones, clips with fewer get all-zero bodies, and the head averages over bodies; 1 suits single-person "
            "actions (the paper's classes), PYSKL's NTU configs use 2 (mutual actions)"
        },
    )
    prenorm: str = field(
        default="layout",
        metadata={
            "help": "pre-normalisation: 'layout' (joints named for the skeleton), 'ntu_indices' (PYSKL's NTU "
            "joint indices on any skeleton, as the authors' runs did), 'none'",
            "choices": PRENORM_MODES,
        },
    )
    balanced_batches: bool = field(
        default=False,
        metadata={
            "help": "draw each epoch's clips with every class equally likely (with replacement, weight 1 / class "
            "size), so that a minority class is not left out of early batches; default: a plain reshuffle (PYSKL)"
        },
    )
    track_max_over_epochs: bool = field(
        default=False,
        metadata={
            "help": "also test after every epoch to report the authors' max-over-epochs accuracy as a labelled "
            "extra column (selected on test: not an unbiased estimate; costs a test pass per epoch)"
        },
    )

    def __post_init__(self) -> None:
        for name in ("seeds", "epochs", "batch_size", "test_clips", "base_channels", "persons"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HarProtocol.{name} must be an integer >= 1, got {value!r}")
        for name in ("first_seed", "min_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"HarProtocol.{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.clip_len, int) or self.clip_len < TEMPORAL_KERNEL:
            raise ValueError(
                f"HarProtocol.clip_len must be an integer >= {TEMPORAL_KERNEL} (the ST-GCN temporal kernel), "
                f"got {self.clip_len!r}"
            )
        if not self.lr > 0:
            raise ValueError(f"HarProtocol.lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"HarProtocol.momentum must be in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("HarProtocol.nesterov needs momentum > 0; pass --no-nesterov or set --momentum")
        if not self.weight_decay >= 0:
            raise ValueError(f"HarProtocol.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.prenorm not in PRENORM_MODES:
            raise ValueError(f"HarProtocol.prenorm must be one of {PRENORM_MODES}, got {self.prenorm!r}")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def schedule(self, num_clips: int, max_batches: int | None = None) -> tuple[int, int]:
        """(epochs, SGD iterations) of training on ``num_clips`` clips.

        An epoch is ceil(num_clips / batch_size) iterations (at most ``max_batches``); the epochs
        are ``epochs``, raised to the fewest whole epochs that reach ``min_iterations``.

        Raises:
            ValueError: num_clips < 1.
        """
        if num_clips < 1:
            raise ValueError(f"a training schedule needs at least one clip, got {num_clips}")
        per_epoch = math.ceil(num_clips / self.batch_size)
        if max_batches is not None:
            per_epoch = min(per_epoch, max_batches)
        epochs = max(self.epochs, math.ceil(self.min_iterations / per_epoch))
        return epochs, epochs * per_epoch

    @classmethod
    def quick(cls, **overrides: Any) -> HarProtocol:
        """A CPU smoke-run protocol: 2 seeds, 2 epochs, batch 8, 32-frame clips."""
        base = cls(seeds=2, epochs=2, batch_size=8, clip_len=32)
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per HarProtocol field (booleans as --flag/--no-flag); an unset flag stays None so
    that :func:`protocol_from_args` can apply it over the paper's defaults or the quick protocol."""
    add_dataclass_options(parser, HarProtocol, "HAR protocol (HarProtocol)", unset_defaults=True)


def protocol_from_args(args: argparse.Namespace, quick: bool = False) -> HarProtocol:
    """HarProtocol from parsed flags: the paper's defaults (or HarProtocol.quick()) overridden by set flags."""
    overrides = given_values(HarProtocol, args)
    return HarProtocol.quick(**overrides) if quick else HarProtocol(**overrides)
