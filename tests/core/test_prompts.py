"""Prompt augmentation: the prompt sets per class and the seeded uniform draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.core.prompts import PromptAugmentationSettings, PromptSampler, load_paraphrases, prompt_sets

ON = PromptAugmentationSettings(prompt_augmentation=True)


def test_draws_are_uniform_per_class_over_a_large_batch():
    sampler = PromptSampler([("a", "b", "c"), ("x",), ("p", "q")], seed=5)
    labels = [0] * 30000 + [1] * 100 + [2] * 20000
    drawn = sampler.draw(labels)
    assert set(drawn[30000:30100]) == {"x"}
    for prompts, part in ((("a", "b", "c"), drawn[:30000]), (("p", "q"), drawn[30100:])):
        counts = np.array([part.count(p) for p in prompts])
        expected = len(part) / len(prompts)
        # binomial standard deviation sqrt(n p (1 - p)); 5 of them is a generous bound
        sd = np.sqrt(len(part) * (1 / len(prompts)) * (1 - 1 / len(prompts)))
        assert np.all(np.abs(counts - expected) < 5 * sd), counts
        assert sum(counts) == len(part)  # nothing from another class's set


def test_same_seed_same_draws_and_state_round_trip():
    sets = [("a", "b", "c", "d"), ("x", "y")]
    labels = [0, 1, 0, 1, 0]
    first, second = PromptSampler(sets, seed=3), PromptSampler(sets, seed=3)
    assert [first.draw(labels) for _ in range(20)] == [second.draw(labels) for _ in range(20)]
    other = PromptSampler(sets, seed=4)
    assert [other.draw(labels) for _ in range(20)] != [PromptSampler(sets, seed=3).draw(labels) for _ in range(20)]
    saved = first.state_dict()
    expected = [first.draw(labels) for _ in range(5)]
    restored = PromptSampler(sets, seed=99)
    restored.load_state_dict(json.loads(json.dumps(saved)))
    assert [restored.draw(labels) for _ in range(5)] == expected
    # draws change from step to step (not one fixed prompt per sample)
    assert len({tuple(first.draw(labels)) for _ in range(20)}) > 1


def test_prompt_sets_join_templates_and_paraphrases(tmp_path):
    prompts = [("a person performs a side kick.", "someone does a side kick."), ("a person waves.",)]
    path = tmp_path / "para.json"
    path.write_text(json.dumps({"Wave": ["a person waves a hand.", "a person waves."], "side kick": ["a kick."]}))
    settings = PromptAugmentationSettings(prompt_augmentation=True, paraphrases=str(path))
    assert prompt_sets(["side kick", "wave"], prompts, settings) == [
        ("a person performs a side kick.", "someone does a side kick.", "a kick."),
        ("a person waves.", "a person waves a hand."),
    ]
    # off: the label prompt alone (paper Sec. 4)
    assert prompt_sets(["side kick", "wave"], prompts, PromptAugmentationSettings()) == [
        ("a person performs a side kick.",), ("a person waves.",)]


def test_prompt_sets_errors(tmp_path):
    with pytest.raises(ValueError, match="several prompts per class"):
        prompt_sets(["a"], [("p",)], ON)
    path = tmp_path / "para.json"
    path.write_text(json.dumps({"jump": ["a jump."]}))
    with pytest.raises(ValueError, match="jump"):
        prompt_sets(["a"], [("p", "q")], PromptAugmentationSettings(prompt_augmentation=True, paraphrases=str(path)))
    path.write_text(json.dumps({"a": "not a list"}))
    with pytest.raises(ValueError, match="not a paraphrase file"):
        load_paraphrases(path)
    with pytest.raises(FileNotFoundError, match="--paraphrases"):
        load_paraphrases(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="prompt_augmentation"):
        PromptAugmentationSettings(paraphrases=str(path))


def test_draw_per_seed_depends_on_the_seed_only_and_covers_the_set():
    from mdm_kinemic.core.prompts import draw_per_seed

    sets = [("a", "b", "c"), ("x", "y")]
    classes, seeds = [0, 1, 0, 1], [11, 12, 13, 14]
    first = draw_per_seed(sets, classes, seeds)
    assert first == draw_per_seed(sets, classes, seeds)
    # one motion alone, or in another order, gets the same prompt (resumed syntheses)
    assert draw_per_seed(sets, [classes[2]], [seeds[2]]) == [first[2]]
    assert draw_per_seed(sets, classes[::-1], seeds[::-1]) == first[::-1]
    many = draw_per_seed(sets, [0] * 3000, range(3000))
    counts = np.array([many.count(p) for p in sets[0]])
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(3000 * 2 / 9)), counts
