"""Run by tests/core/test_objective_torchrun.py under torchrun: a few optimizer steps of the KineMIC
objective on TinyDenoisers, each rank on its share of one batch, gradients averaged over ranks.

Writes OUT/rank{R}.json: the merged scalars of every step and the trainable parameters after them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TinyDenoiser, linear_q_sample  # noqa: E402  (the tests' own denoiser)

from mdm_kinemic.core.contrastive import ContrastiveSettings  # noqa: E402
from mdm_kinemic.core.mic import MICModule  # noqa: E402
from mdm_kinemic.core.objective import KineMICBatch, KineMICObjective, ObjectiveSettings  # noqa: E402
from mdm_kinemic.core.sharding import merge_shard_scalars, rank_shard, shard_bounds  # noqa: E402
from mdm_kinemic.distributed import Ranks  # noqa: E402

PAIRS, FEATURES, FRAMES, PRIOR_FRAMES, STEPS = 5, 6, 12, 20, 3


def batch(generator: torch.Generator) -> KineMICBatch:
    """Five pairs of three classes. Rank 0 holds pairs 0-2, rank 1 pairs 3-4 (with two ranks); the
    priors' pseudo-classes put the only positive of anchors 0 and 2 (class 0) on rank 1 and leave
    anchor 3 (class 2) without any, bank included: it is excluded, and the anchor count is global."""
    return KineMICBatch(
        x0_target=torch.randn(PAIRS, FEATURES, 1, FRAMES, generator=generator),
        target_lengths=torch.tensor([12, 9, 7, 12, 10]),
        target_action=torch.tensor([0, 1, 0, 2, 1]),
        target_text=["a person kicks", "a person waves", "a person kicks", "a person sits", "a person waves"],
        x0_prior=torch.randn(PAIRS, FEATURES, 1, PRIOR_FRAMES, generator=generator),
        prior_lengths=torch.tensor([20, 14, 18, 6, 20]),
        prior_text=["kick high", "wave both arms", "side kick", "sit down", "wave"],
        prior_action=torch.tensor([1, 1, 1, 0, 1]),
    )


def main(out: Path) -> None:
    ranks = Ranks.from_env()
    torch.manual_seed(0)
    student, teacher = TinyDenoiser(n_actions=3), TinyDenoiser()
    settings = ObjectiveSettings.preset(
        "full", text_dropout=0.3, action_dropout=0.3,
        contrastive_settings=ContrastiveSettings(learnable_temperature=True, bank_size=4))
    objective = KineMICObjective(student, teacher, MICModule(16), linear_q_sample, settings)
    # a parameter no loss reaches keeps no gradient: weight decay must skip it on every rank
    unused = torch.nn.Parameter(torch.ones(3))
    params = [p for p in [*student.parameters(), *objective.parameters()] if p.requires_grad] + [unused]
    # plain SGD: Adam would turn the float noise of a gradient that is zero in exact arithmetic
    # (attention key biases, softmax-invariant) into full-size steps of random sign
    optimizer = torch.optim.SGD(params, lr=0.1, weight_decay=0.01)
    data = torch.Generator().manual_seed(1)
    sizes = [b - a for a, b in shard_bounds(PAIRS, ranks.world_size)]
    steps = []
    for _ in range(STEPS):
        whole = batch(data)
        timesteps = torch.randint(0, 1000, (PAIRS,), generator=data)
        shard = rank_shard(ranks, PAIRS)
        out_step = objective(whole.rows(shard), timesteps[shard.start : shard.stop], shard=shard)
        optimizer.zero_grad()
        out_step.loss.backward()
        ranks.average_gradients(params)
        optimizer.step()
        steps.append(merge_shard_scalars(ranks.all_gather(out_step.scalars()), sizes))
    result = {"steps": steps, "params": [p.detach().flatten().tolist() for p in params],
              "bank": objective.contrastive.bank()[0].tolist()}
    (out / f"rank{ranks.rank}.json").write_text(json.dumps(result))
    ranks.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
