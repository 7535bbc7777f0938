"""argparse groups built from settings dataclasses, and the dataclasses rebuilt (upstream-free)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args, given_values


@dataclass(frozen=True)
class Toy:
    path: str = field(metadata={"help": "a required path"})
    steps: int = field(default=5, metadata={"help": "how many"})
    rate: float = 0.5
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    items: tuple[int, ...] = (1, 2)
    name: Optional[str] = None
    temperature: float = field(default=0.07, metadata={"help": "tau"})
    unit: str = field(default="frame", metadata={"help": "a unit", "choices": ("frame", "element")})

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_dataclass_options(p, Toy, "toy", **kw)
    return p


def test_round_trip_of_every_field_type():
    args = parser().parse_args(["--path", "x", "--steps", "7", "--flag", "--mode", "b", "--items", "3", "4",
                                "--name", "none", "--rate", "0.25"])
    assert dataclass_from_args(Toy, args) == Toy("x", 7, 0.25, True, "b", (3, 4), None, 0.07)


def test_defaults_are_the_dataclass_defaults():
    assert dataclass_from_args(Toy, parser().parse_args(["--path", "x"])) == Toy("x")


def test_prefix_renames_and_default_overrides():
    p = parser(prefix="toy_", renames={"temperature": "tau"}, defaults={"steps": 9})
    args = p.parse_args(["--toy_path", "x", "--toy_tau", "0.1", "--no-toy_flag"])
    toy = dataclass_from_args(Toy, args, prefix="toy_", renames={"temperature": "tau"})
    assert (toy.temperature, toy.steps, toy.flag) == (0.1, 9, False)


def test_help_shows_defaults_and_required():
    text = parser().format_help()
    assert "a required path (required)" in text
    assert "how many (default: 5)" in text
    assert "(default: 1 2)" in text
    assert "--flag, --no-flag" in text


def test_bad_choice_and_validation_errors_name_the_flag():
    with pytest.raises(argparse.ArgumentError):
        parser().parse_args(["--path", "x", "--mode", "c"])
    with pytest.raises(argparse.ArgumentError):  # metadata["choices"] of a str field
        parser().parse_args(["--path", "x", "--unit", "sample"])
    assert dataclass_from_args(Toy, parser().parse_args(["--path", "x", "--unit", "element"])).unit == "element"
    args = parser(prefix="toy_").parse_args(["--toy_path", "x", "--toy_steps", "0"])
    with pytest.raises(ValueError, match=r"steps \(--toy_steps\) must be >= 1"):
        dataclass_from_args(Toy, args, prefix="toy_")


def test_unset_defaults_report_only_the_given_flags():
    p = parser(unset_defaults=True)
    assert given_values(Toy, p.parse_args([])) == {}
    given = given_values(Toy, p.parse_args(["--steps", "3", "--items", "7", "--no-flag"]))
    assert given == {"steps": 3, "items": (7,), "flag": False}
    assert "how many (default: 5)" in p.format_help()  # help still shows the dataclass default


def test_empty_data_folders_default_to_upstreams_layout(tmp_path, monkeypatch):
    from mdm_kinemic.train_fewshot import build_parser, fill_upstream_defaults

    root = tmp_path / "mdm"
    (root / "model").mkdir(parents=True)
    (root / "model" / "mdm.py").write_text("")
    monkeypatch.setenv("MDM_ROOT", str(root))
    args = build_parser().parse_args(["--mdm_ckpt", "humanml_trans_enc_512"])
    fill_upstream_defaults(args)
    assert args.target_data == str(root / "dataset" / "NTU-VIBE")
    assert args.source_data == str(root / "dataset" / "HumanML3D")
    assert args.save_dir == str(root / "save" / "kinemic_humanml_trans_enc_512")

    given = build_parser().parse_args(
        ["--mdm_ckpt", "/ckpts/run7/model000100000.pt", "--source_data", "/data/hml", "--target_data", "/data/t"]
    )
    fill_upstream_defaults(given)
    assert (given.source_data, given.target_data) == ("/data/hml", "/data/t")
    assert given.save_dir == str(root / "save" / "kinemic_run7")


@dataclass(frozen=True)
class WithDevice:
    out: str = field(metadata={"help": "output", "aliases": ("output_dir",)})
    device: str = field(default="auto", metadata={"help": "a device", "parse": lambda text: f"<{text}>"})


def test_parse_metadata_is_the_flag_type_and_aliases_are_extra_flag_names():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_dataclass_options(p, WithDevice, "w")
    assert dataclass_from_args(WithDevice, p.parse_args(["--output_dir", "o", "--device", "0"])) == WithDevice("o", "<0>")
    assert p.parse_args(["--out", "x"]).out == "x"


def test_a_parse_error_is_reported_as_the_flag_s_error(capsys):
    from mdm_kinemic.flags import device_field

    @dataclass
    class Dev:
        device: str = device_field()

    p = argparse.ArgumentParser()
    add_dataclass_options(p, Dev, "d")
    assert p.parse_args(["--device", "-1"]).device == "cpu"
    with pytest.raises(SystemExit):
        p.parse_args(["--device", "cuda:x"])
    assert "argument --device: device 'cuda:x' is not one of" in capsys.readouterr().err
