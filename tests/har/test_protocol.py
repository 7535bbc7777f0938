"""HarProtocol: the paper's defaults, validation naming the field, CLI flags built from the fields."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from mdm_kinemic.har.protocol import (
    HarProtocol,
    add_protocol_arguments,
    protocol_from_args,
)


def test_defaults_are_the_papers_protocol():
    p = HarProtocol()
    assert (p.seeds, p.epochs, p.batch_size, p.lr, p.momentum, p.weight_decay) == (5, 80, 64, 0.1, 0.9, 5e-4)
    assert (p.clip_len, p.base_channels, p.test_clips, p.persons) == (100, 64, 1, 1)
    assert p.nesterov and p.prenorm == "layout" and not p.track_max_over_epochs
    assert p.seed_list == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"seeds": 0}, "seeds"),
        ({"epochs": -1}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"clip_len": 8}, "clip_len"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": 0.0}, "nesterov"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"prenorm": "pelvis"}, "prenorm"),
        ({"first_seed": -2}, "first_seed"),
        ({"base_channels": 0}, "base_channels"),
        ({"persons": 0}, "persons"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"HarProtocol.{field}"):
        HarProtocol(**kwargs)


def test_prenorm_error_lists_accepted_values():
    with pytest.raises(ValueError, match="layout.*ntu_indices.*none"):
        HarProtocol(prenorm="pelvis")


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_protocol_arguments(parser)
    return parser.parse_args(argv)


def test_every_field_has_a_flag_and_booleans_are_optional_actions():
    args = _parse([])
    for f in fields(HarProtocol):
        assert getattr(args, f.name) is None
    assert protocol_from_args(args) == HarProtocol()
    args = _parse(["--seeds", "3", "--lr", "0.05", "--no-nesterov", "--prenorm", "ntu_indices", "--track_max_over_epochs"])
    p = protocol_from_args(args)
    assert (p.seeds, p.lr, p.nesterov, p.prenorm, p.track_max_over_epochs) == (3, 0.05, False, "ntu_indices", True)
    with pytest.raises(SystemExit):
        _parse(["--prenorm", "pelvis"])


def test_quick_protocol_is_small_and_flags_override_it():
    q = protocol_from_args(_parse([]), quick=True)
    assert q == HarProtocol.quick()
    assert q.epochs <= 2 and q.seeds == 2 and q.clip_len < 100
    assert protocol_from_args(_parse(["--epochs", "3"]), quick=True).epochs == 3


def test_min_iterations_raises_epochs_to_whole_epochs_reaching_it():
    p = HarProtocol(epochs=25, batch_size=64, min_iterations=200)
    # 30 clips: 1 batch per epoch -> 200 epochs; 502 clips: 8 per epoch x 25 = 200 already
    assert p.schedule(30) == (200, 200)
    assert p.schedule(502) == (25, 200)
    # 1,179 clips: 19 per epoch x 25 = 475 > 200, epochs unchanged
    assert p.schedule(1179) == (25, 475)
    # 3 batches per epoch: 200 / 3 -> 67 whole epochs = 201 iterations
    assert p.schedule(150) == (67, 201)
    assert p.schedule(150, max_batches=2) == (100, 200)
    assert HarProtocol(epochs=25, batch_size=64).schedule(30) == (25, 25)
    with pytest.raises(ValueError, match="HarProtocol.min_iterations"):
        HarProtocol(min_iterations=-1)
    assert protocol_from_args(_parse(["--min_iterations", "300"])).min_iterations == 300
