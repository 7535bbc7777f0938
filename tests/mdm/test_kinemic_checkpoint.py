"""KineMIC checkpoint folders: layout, exact round trip, and the errors that name the file and the fix."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from mdm_kinemic.core.denoiser import Condition
from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
    KineMICCheckpointError,
    load_kinemic_checkpoint,
    load_optimizer_state,
    save_kinemic_checkpoint,
)
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings, lora_parameter_names

pytestmark = pytest.mark.upstream

TEXTS = ["a person performs a side kick.", "a person waves with the right hand."]
CLASSES = ("side kick", "wave", "squat")
LORA = LoraSettings(rank=4, alpha=8, targets=("attention", "feed_forward", "output_process"))
T = 10
STEP = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_checkpoint):
    """A base checkpoint, a KineMIC model after one optimizer step, and its saved folder."""
    from mdm_kinemic.core.mic import MICModule
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import start_from_base

    root = tmp_path_factory.mktemp("ckpt")
    base = tiny_base_checkpoint(root / "base", seed=1)
    torch.manual_seed(0)
    loaded = start_from_base(base, KineMICModelSettings(num_actions=3, class_names=CLASSES), LORA)
    model, mic = loaded.model, MICModule(64)
    optimizer = torch.optim.AdamW(model.trainable_parameters() + list(mic.parameters()), lr=1e-2)
    model.train()
    x_t, t, frame_mask = _inputs()
    out = model.student.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([0, 2])), frame_mask)
    (out.x0.square().mean() + mic(out.features, frame_mask).z.square().mean()).backward()
    optimizer.step()
    model.eval()
    path = save_kinemic_checkpoint(root / "kinemic", STEP, model, optimizer, {"mic": mic})
    return {"base": base, "model": model, "mic": mic, "optimizer": optimizer, "path": path, "root": root}


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 263, 1, T, generator=g), torch.tensor([11, 650]), torch.ones(2, T, dtype=torch.bool)


def test_folder_layout_and_atomic_writes(trained):
    folder = trained["path"].parent
    assert sorted(p.name for p in folder.iterdir()) == ["args.json", "model000000005.pt", "opt000000005.pt"]


def test_args_json_is_upstreams_plus_a_kinemic_section(trained):
    args = json.loads((trained["path"].parent / "args.json").read_text())
    base_args = json.loads((trained["base"].parent / "args.json").read_text())
    assert {k: v for k, v in args.items() if k != "kinemic"} == base_args
    section = args["kinemic"]
    assert section["base_checkpoint"] == str(trained["base"])
    assert section["base_sha256"] == hashlib.sha256(trained["base"].read_bytes()).hexdigest()
    assert section["num_actions"] == 3 and section["class_names"] == list(CLASSES)
    assert section["lora"] == {"rank": 4, "alpha": 8, "dropout": 0.1, "targets": ["attention", "feed_forward", "output_process"]}
    assert (section["action_init"], section["teacher_mode"], section["base_use_ema"]) == ("normal", "eval", False)


def test_model_file_holds_only_what_kinemic_trains(trained):
    payload = torch.load(trained["path"], weights_only=True)
    model = trained["model"]
    assert set(payload) == {"kinemic_format", "step", "lora", "action_embedding", "extra"}
    assert payload["step"] == STEP
    assert all(".lora_A." in k or ".lora_B." in k for k in payload["lora"])
    stored = sum(v.numel() for v in payload["lora"].values())
    adapters = set(lora_parameter_names(model.network))
    assert stored == sum(p.numel() for n, p in model.network.named_parameters() if n in adapters)
    assert torch.equal(payload["action_embedding"], model.mdm.action_embedding.weight.detach())
    assert set(payload["extra"]) == {"mic"}
    assert not any("clip" in k for k in payload["lora"])


def test_loading_back_reproduces_outputs_exactly(trained):
    from mdm_kinemic.core.mic import MICModule

    mic = MICModule(64)
    loaded = load_kinemic_checkpoint(trained["path"].parent, num_actions=3, extra_modules={"mic": mic})
    assert loaded.step == STEP and loaded.model_path == trained["path"]
    loaded.model.text_cache = trained["model"].text_cache  # CLIP is not in the checkpoint; skip re-encoding
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS, action=torch.tensor([2, 1]))
    with torch.no_grad():
        before = trained["model"].student.denoise(x_t, t, cond, frame_mask)
        after = loaded.model.student.denoise(x_t, t, cond, frame_mask)
        teacher_before = trained["model"].teacher.denoise(x_t, t, Condition(text=TEXTS), frame_mask)
        teacher_after = loaded.model.teacher.denoise(x_t, t, Condition(text=TEXTS), frame_mask)
    assert torch.equal(before.x0, after.x0) and torch.equal(before.features, after.features)
    assert torch.equal(teacher_before.x0, teacher_after.x0)
    for key, value in trained["mic"].state_dict().items():
        assert torch.equal(mic.state_dict()[key], value), key
    assert loaded.model.lora == LORA and loaded.model.settings.class_names == CLASSES
    assert {n for n, p in loaded.model.named_parameters() if p.requires_grad} == {
        n for n, p in trained["model"].named_parameters() if p.requires_grad
    }
    saved = load_optimizer_state(trained["path"])
    expected = trained["optimizer"].state_dict()
    assert saved["param_groups"] == expected["param_groups"]
    for index, state in expected["state"].items():
        assert torch.equal(saved["state"][index]["exp_avg"], state["exp_avg"])


def test_num_actions_mismatch_is_a_clear_error(trained):
    with pytest.raises(KineMICCheckpointError, match=r"num_actions mismatch: .*model000000005.pt was trained for 3 "
                       r"action classes \(side kick, wave, squat\), but 4 were requested"):
        load_kinemic_checkpoint(trained["path"], num_actions=4)


def test_args_json_disagreeing_with_the_stored_embedding_is_a_clear_error(trained, tmp_path):
    folder = tmp_path / "edited"
    shutil.copytree(trained["path"].parent, folder)
    args = json.loads((folder / "args.json").read_text())
    args["kinemic"].update(num_actions=4, class_names=[])
    (folder / "args.json").write_text(json.dumps(args))
    with pytest.raises(KineMICCheckpointError, match="stores an action embedding for 3 classes but .*num_actions=4"):
        load_kinemic_checkpoint(folder / trained["path"].name)


def test_unusable_folders_name_the_file_and_the_fix(trained, tmp_path):
    with pytest.raises(KineMICCheckpointError, match="no 'kinemic' section.*--mdm_ckpt"):
        load_kinemic_checkpoint(trained["base"])
    folder = tmp_path / "no_args"
    folder.mkdir()
    shutil.copy(trained["path"], folder)
    with pytest.raises(KineMICCheckpointError, match="args.json is missing"):
        load_kinemic_checkpoint(folder / trained["path"].name)
    truncated = tmp_path / "truncated"
    shutil.copytree(trained["path"].parent, truncated)
    data = (truncated / trained["path"].name).read_bytes()
    (truncated / trained["path"].name).write_bytes(data[: len(data) // 2])
    with pytest.raises(KineMICCheckpointError, match="truncated"):
        load_kinemic_checkpoint(truncated / trained["path"].name)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_kinemic_checkpoint(tmp_path / "model000000001.pt")


def test_base_checkpoint_is_verified(trained, tmp_path):
    altered = tmp_path / "model000000000.pt"
    altered.write_bytes(trained["base"].read_bytes() + b"\0")
    with pytest.raises(KineMICCheckpointError, match="is not the base checkpoint .*sha256 differs"):
        load_kinemic_checkpoint(trained["path"], base_checkpoint=altered)
    with pytest.raises(FileNotFoundError, match="base MDM checkpoint .* is not at"):
        load_kinemic_checkpoint(trained["path"], base_checkpoint=tmp_path / "moved.pt")


def test_requested_extra_module_must_be_stored(trained):
    with pytest.raises(KineMICCheckpointError, match=r"stores no module \['ema'\]"):
        load_kinemic_checkpoint(trained["path"], extra_modules={"ema": torch.nn.Linear(1, 1)})


def test_save_without_optimizer_and_negative_step(trained, tmp_path):
    path = save_kinemic_checkpoint(tmp_path / "run", 0, trained["model"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["args.json", "model000000000.pt"]
    assert load_optimizer_state(path) is None
    with pytest.raises(ValueError, match="step must be >= 0"):
        save_kinemic_checkpoint(tmp_path / "run", -1, trained["model"])
