"""train/train_mdm.py on your own data through python -m mdm_kinemic.run --data_dir."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR
from mdm_kinemic.mdm.upstream.hml_data import DataDirError, data_dir_loader


def test_a_data_dir_without_the_layout_names_what_is_missing(tmp_path):
    (tmp_path / "new_joint_vecs").mkdir()
    np.save(tmp_path / "Mean.npy", np.zeros(263))
    with pytest.raises(DataDirError, match="lacks texts, Std.npy, train.txt: upstream's HumanML3D loader needs"):
        data_dir_loader(tmp_path, name="humanml", batch_size=2, split="train")


@pytest.fixture
def teacher_data(tmp_path):
    from mdm_kinemic.data.humanml3d import write_clip, write_mean_std, write_split

    mean = np.load(HUMANML3D_STATS_DIR / "Mean.npy")
    std = np.load(HUMANML3D_STATS_DIR / "Std.npy")
    rng = np.random.default_rng(0)
    ids = []
    for k, length in enumerate((40, 52, 30, 64)):  # 30 frames: below upstream's 40, skipped
        ids.append(f"clip{k}")
        write_clip(tmp_path / "data", ids[-1], (mean + 0.1 * std * rng.standard_normal((length, 263))).astype(np.float32),
                   captions=["a person walks forward.", ("a person stops.", 0.0, 1.0)])
    write_mean_std(tmp_path / "data", mean, std)
    write_split(tmp_path / "data", "train", ids)
    return tmp_path / "data"


@pytest.mark.upstream
@pytest.mark.slow
def test_train_mdm_trains_on_the_data_dir(run_cli, teacher_data, tmp_path):
    save = tmp_path / "teacher"
    result = run_cli(["-m", "mdm_kinemic.run", "train.train_mdm", "--save_dir", str(save), "--data_dir",
                      str(teacher_data), "--layers", "2", "--latent_dim", "64", "--batch_size", "2",
                      "--num_steps", "1", "--save_interval", "1000", "--log_interval", "1", "--device", "-1",
                      "--diffusion_steps", "10"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((save / "args.json").read_text())["data_dir"] == str(teacher_data)
    # 3 usable clips, batch 2, drop_last: 1 batch per epoch; upstream saves at the end of the loop
    assert sorted(p.name for p in save.glob("model*.pt"))
    # the parsed split is cached privately, not in upstream's ./dataset where HumanML3D's would go
    from mdm_kinemic.mdm.upstream.locate import locate_upstream

    assert not (locate_upstream() / "dataset" / "t2m_train.npy").exists()
