"""The patched route: patches/ applied to a copy of the pinned upstream, then its own generate.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = Path(os.environ.get("MDM_ROOT", REPO_ROOT / "third_party" / "motion-diffusion-model"))
PATCHES = sorted((REPO_ROOT / "patches").glob("0*.patch"))

pytestmark = pytest.mark.upstream


def test_patches_are_format_patch_files_against_the_pinned_commit():
    assert [p.name[:5] for p in PATCHES] == ["0001-", "0002-"]
    for patch in PATCHES:
        head = patch.read_text().splitlines()
        assert head[0].startswith("From ") and any(line.startswith("Subject: [PATCH") for line in head[:5])


@pytest.fixture(scope="module")
def patched_upstream(tmp_path_factory):
    """A copy of the submodule's working tree with every patch applied (checked first)."""
    copy = tmp_path_factory.mktemp("upstream") / "motion-diffusion-model"
    shutil.copytree(UPSTREAM, copy, ignore=shutil.ignore_patterns(".git", "assets", "__pycache__"))
    for patch in PATCHES:
        check = subprocess.run(["git", "apply", "--check", str(patch)], cwd=copy, capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, f"{patch.name} does not apply to the pinned upstream: {check.stderr}"
        subprocess.run(["git", "apply", str(patch)], cwd=copy, check=True)
    return copy


def test_the_patch_adds_the_plugin_hook_and_keeps_upstream_behaviour_without_plugins(patched_upstream):
    hook = (patched_upstream / "utils" / "model_plugins.py").read_text()
    assert "ENTRY_POINT_GROUP = 'mdm.model_plugins'" in hook
    parser_util = (patched_upstream / "utils" / "parser_util.py").read_text()
    assert "add_plugin_options(parser)" in parser_util and "plugin.cond_mode(args)" in parser_util
    assert "p3.Axes3D(fig)" not in (patched_upstream / "data_loaders/humanml/utils/plot_script.py").read_text()


def test_patched_generate_with_kinemic_matches_the_runner_route(patched_upstream, run_cli, generate_cli,
                                                                 tiny_student, dual_run, tmp_path):
    out = tmp_path / "out"
    args = generate_cli.args(tiny_student["kinemic"], out, *generate_cli.dual(tmp_path))
    result = run_cli(["-m", "sample.generate", *args],
                     cwd=patched_upstream, env={"MDM_MODEL_PLUGINS": "mdm_kinemic.mdm.sampling.plugin:PLUGIN"})
    assert result.returncode == 0, result.stderr[-3000:]
    patched = np.load(out / "results.npy", allow_pickle=True).item()
    _, runner = dual_run
    assert patched["text"] == runner["text"] == ["a person is jumping"] * 2
    # same seed and conditions; the runner guides in one batch, upstream's wrapper in two passes
    np.testing.assert_allclose(patched["motion"], runner["motion"], atol=1e-4)
    assert (out / "samples_00_to_01.mp4").is_file()
