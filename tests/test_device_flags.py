"""Every command's --device takes upstream MDM's integer (N = cuda:N, -1 = CPU) beside its own names.

Parse level only: CUDA is not needed, nothing runs on a device. One shared parser
(flags.parse_device) serves every command; these tests hold each command to it.
"""

from __future__ import annotations

import pytest

from mdm_kinemic.flags import (
    dataclass_from_args,
    device_type,
    parse_device,
    upstream_device_index,
)

# (flag value, canonical spelling, upstream's integer or None for "auto")
DEVICES = [
    ("0", "cuda:0", 0),
    ("1", "cuda:1", 1),
    ("-1", "cpu", -1),
    ("auto", "auto", None),
    ("cpu", "cpu", -1),
    ("CPU", "cpu", -1),
    ("cuda", "cuda", 0),
    ("cuda:2", "cuda:2", 2),
]
BAD = ["-2", "tpu", "cuda:", "cuda:x", "", "1.5", "gpu0"]


@pytest.mark.parametrize(("text", "canonical", "index"), DEVICES)
def test_parse_device_and_upstream_index(text, canonical, index):
    assert parse_device(text) == canonical
    assert upstream_device_index(text) == index
    assert upstream_device_index(canonical) == index


def test_integers_are_accepted_as_python_ints_too():
    assert (parse_device(0), parse_device(3), parse_device(-1)) == ("cuda:0", "cuda:3", "cpu")


@pytest.mark.parametrize("text", BAD)
def test_bad_devices_name_the_accepted_values(text):
    with pytest.raises(ValueError, match=r"is not one of: auto, cpu, cuda, cuda:N, N \(= cuda:N\), -1 \(= cpu\)"):
        parse_device(text)
    with pytest.raises(Exception, match="is not one of"):
        device_type(text)


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_synth(text, canonical):
    from mdm_kinemic.synth import SynthSettings, build_parser

    args = build_parser().parse_args(["--model_path", "m", "--output_dir", "o", "--device", text])
    settings = dataclass_from_args(SynthSettings, args)
    assert (settings.device, settings.out) == (canonical, "o")


def test_synth_seed_is_upstream_generate_default():
    from mdm_kinemic.synth import SynthSettings

    assert SynthSettings(model_path="m", out="o").seed == 10


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_train_fewshot(text, canonical):
    from mdm_kinemic.train_fewshot import build_parser
    from mdm_kinemic.training.settings import RunSettings

    args = build_parser().parse_args(["--mdm_ckpt", "m", "--save_dir", "s", "--device", text])
    assert dataclass_from_args(RunSettings, args).device == canonical
    assert RunSettings(mdm_ckpt="m", save_dir="s", device=int(text)).device == canonical


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_export(text, canonical, tmp_path):
    from mdm_kinemic.export import ExportSettings, build_parser

    model = tmp_path / "model000000001.pt"
    model.touch()
    args = build_parser().parse_args(["--model_path", str(model), "--out", str(tmp_path / "x.pt"), "--device", text])
    assert dataclass_from_args(ExportSettings, args).device == canonical


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_har_evaluate(text, canonical):
    from mdm_kinemic.har.evaluate import build_parser

    assert build_parser().parse_args(["--train_real", "a", "--test", "b", "--device", text]).device == canonical


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_har_evaluator(text, canonical, monkeypatch):
    from mdm_kinemic.har import evaluator

    seen = {}

    def fake_train(train, test, protocol, out, device):
        seen["device"] = device
        return {"test_top1": 0.0, "test_balanced_accuracy": 0.0, "converged": True}

    monkeypatch.setattr(evaluator, "load_set", lambda *args: None)
    monkeypatch.setattr(evaluator, "train_evaluator", fake_train)
    assert evaluator.main(["--train", "a", "--test", "b", "--out", "o", "--device", text]) == 0
    assert seen["device"] == canonical


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_har_score(text, canonical, monkeypatch):
    from mdm_kinemic.har import score

    seen = {}

    def fake_load(path, device):
        seen["device"] = device
        raise ValueError("stop here")

    monkeypatch.setattr(score, "load_recogniser", fake_load)
    with pytest.raises(SystemExit):
        score.main(["--recogniser", "r", "--test", "t", "--out", "o", "--device", text])
    assert seen["device"] == canonical


@pytest.mark.parametrize(("text", "canonical"), [("0", "cuda:0"), ("-1", "cpu")])
def test_bench(text, canonical):
    from mdm_kinemic.bench.bandai import build_parser
    from mdm_kinemic.bench.presets import BenchPreset, get_preset

    args = build_parser().parse_args(["--bandai_root", "x", "--out", "y", "--device", text])
    assert args.device == canonical
    assert get_preset("cpu", device=args.device).device == canonical
    assert BenchPreset(device=int(text)).device == canonical


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "0"], ["--device", "0"]),
        (["--device", "-1"], ["--device", "-1"]),
        (["--device", "cpu"], ["--device", "-1"]),
        (["--device=cuda:1"], ["--device", "1"]),
        (["--seed", "3", "--device", "auto", "--num_samples", "2"], ["--seed", "3", "--num_samples", "2"]),
    ],
)
def test_run_gives_upstream_its_integer(argv, expected):
    from mdm_kinemic.run import upstream_device_flag

    assert upstream_device_flag(argv) == expected


@pytest.mark.parametrize("argv", [["--device", "tpu"], ["--device"]])
def test_run_refuses_a_bad_device(argv):
    from mdm_kinemic.run import upstream_device_flag

    with pytest.raises(ValueError, match="--device|is not one of"):
        upstream_device_flag(argv)


@pytest.mark.parametrize(
    "command",
    [
        ["mdm_kinemic.synth", "--model_path", "m", "--out", "o"],
        ["mdm_kinemic.train_fewshot", "--mdm_ckpt", "m", "--save_dir", "s"],
        ["mdm_kinemic.har.evaluate", "--train_real", "a", "--test", "b"],
        ["mdm_kinemic.bench.bandai", "--bandai_root", "x", "--out", "y"],
    ],
)
def test_a_bad_device_is_one_message_with_exit_status_2(command, capsys):
    import importlib

    module = importlib.import_module(command[0])
    with pytest.raises(SystemExit) as exit_info:
        module.build_parser().parse_args([*command[1:], "--device", "tpu"])
    assert exit_info.value.code == 2
    assert "argument --device: device 'tpu' is not one of" in capsys.readouterr().err
