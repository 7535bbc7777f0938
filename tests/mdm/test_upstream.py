"""mdm/upstream/locate.py, clip_compat.py, smpl_compat.py: locating and importing upstream MDM.

Locating tests run everywhere; importing tests need the submodule (``upstream`` marker). Import
isolation is checked in fresh interpreters, where nothing has imported upstream yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mdm_kinemic.mdm.upstream.locate import (
    MDM_ROOT_ENV,
    SUBMODULE_ROOT,
    UPSTREAM_PACKAGES,
    UpstreamConflictError,
    UpstreamNotFoundError,
    import_upstream,
    locate_upstream,
    resolve_user_path,
    upstream_cwd,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run_python(code: str, *, cwd: Path, pythonpath: list[Path] = (), env: dict | None = None) -> dict:
    """Run code in a fresh interpreter; it prints one JSON line, returned parsed."""
    environment = {k: v for k, v in os.environ.items() if k != MDM_ROOT_ENV}
    environment["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(REPO_ROOT)])
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], check=False, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- locating (no upstream needed)


def test_missing_root_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(UpstreamNotFoundError) as err:
        locate_upstream(tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "--mdm_root" in message
    assert "git submodule update --init third_party/motion-diffusion-model" in message


def test_env_variable_is_used_when_no_flag(tmp_path, monkeypatch):
    monkeypatch.setenv(MDM_ROOT_ENV, str(tmp_path / "from_env"))
    with pytest.raises(UpstreamNotFoundError, match=r"from_env .*\$MDM_ROOT"):
        locate_upstream()


def test_flag_wins_over_env_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(MDM_ROOT_ENV, str(tmp_path / "from_env"))
    with pytest.raises(UpstreamNotFoundError, match="from_flag"):
        locate_upstream(tmp_path / "from_flag")


def test_relative_root_is_resolved_against_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UpstreamNotFoundError, match=str(tmp_path / "rel" / "mdm")):
        locate_upstream("rel/mdm")


def test_resolve_user_path_is_absolute_and_expands_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_user_path("a/b.pt") == tmp_path / "a" / "b.pt"
    assert resolve_user_path("~/c.pt") == tmp_path / "home" / "c.pt"


# ---------------------------------------------------------------- importing


@pytest.mark.upstream
def test_default_is_the_submodule(monkeypatch):
    monkeypatch.delenv(MDM_ROOT_ENV, raising=False)
    assert locate_upstream() == SUBMODULE_ROOT
    assert (SUBMODULE_ROOT / "model" / "mdm.py").is_file()


@pytest.mark.upstream
def test_generic_names_resolve_to_upstream_despite_shadows(tmp_path):
    root = locate_upstream()
    shadows = tmp_path / "shadows"
    # another installed package called utils (imported before upstream), one called eval (not yet
    # imported), and same-named folders in the working directory
    (shadows / "utils").mkdir(parents=True)
    (shadows / "utils" / "__init__.py").write_text("SHADOW = True\n")
    (shadows / "eval").mkdir()
    (shadows / "eval" / "__init__.py").write_text("SHADOW = True\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mdm.py").write_text("raise RuntimeError('shadow model imported')\n")
    names = ", ".join(UPSTREAM_PACKAGES)
    result = _run_python(
        f"""
        import json, sys, importlib
        import utils
        assert getattr(utils, "SHADOW", False)
        path_before = list(sys.path)
        from mdm_kinemic.mdm.upstream.locate import import_upstream
        root = import_upstream()
        import model.mdm, utils.model_util, diffusion.gaussian_diffusion, data_loaders.humanml_utils
        origins = {{}}
        for name in "{names}".split(", "):
            module = importlib.import_module(name)
            origins[name] = list(module.__path__)
        print(json.dumps({{
            "root": str(root), "origins": origins, "mdm": model.mdm.__file__,
            "model_util": utils.model_util.__file__,
            "path_prefix_kept": sys.path[: len(path_before)] == path_before,
            "root_last": sys.path[-1] == str(root),
            "ours": __import__("mdm_kinemic").__file__,
        }}))
        """,
        cwd=tmp_path,
        pythonpath=[shadows],
    )
    assert result["root"] == str(root)
    for name in UPSTREAM_PACKAGES:
        assert result["origins"][name] == [str(root / name)], name
    assert result["mdm"] == str(root / "model" / "mdm.py")
    assert result["model_util"] == str(root / "utils" / "model_util.py")
    assert result["path_prefix_kept"] and result["root_last"]
    assert result["ours"] == str(REPO_ROOT / "mdm_kinemic" / "__init__.py")


@pytest.mark.upstream
def test_openai_clip_is_kept_when_installed_and_a_foreign_clip_replaced(tmp_path):
    openai_like = tmp_path / "openai" / "clip"
    openai_like.mkdir(parents=True)
    (openai_like / "__init__.py").write_text("from .clip import load, tokenize\nfrom . import model\n")
    (openai_like / "clip.py").write_text("def load(*a, **k): pass\ndef tokenize(*a, **k): pass\n")
    (openai_like / "model.py").write_text("def convert_weights(m): pass\n")
    foreign = tmp_path / "foreign" / "clip"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text("NOT_OPENAI = True\n")
    code = """
        import json, clip
        from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_state
        import_upstream()
        import clip as after
        print(json.dumps({"stand_in": upstream_state().clip_stand_in, "file": after.__file__}))
        """
    kept = _run_python(code, cwd=tmp_path, pythonpath=[tmp_path / "openai"])
    assert kept == {"stand_in": False, "file": str(openai_like / "__init__.py")}
    replaced = _run_python(code, cwd=tmp_path, pythonpath=[tmp_path / "foreign"])
    assert replaced["stand_in"] is True
    assert replaced["file"].endswith(os.path.join("mdm_kinemic", "mdm", "upstream", "clip_compat.py"))


@pytest.mark.upstream
def test_clip_stand_in_offers_what_upstream_uses():
    import_upstream()
    import clip

    from mdm_kinemic.mdm.upstream import clip_compat
    from mdm_kinemic.text import clip as text_clip

    assert getattr(clip, "mdm_kinemic_stand_in", False)
    texts = ["a person walks forward.", " ".join(["run"] * 30)]
    assert torch.equal(clip.tokenize(texts, context_length=22, truncate=True), text_clip.tokenize(texts, 22, True))
    with pytest.raises(RuntimeError, match="too long"):
        clip.tokenize(texts, context_length=22)
    assert clip.available_models() == ["ViT-B/32"]
    with pytest.raises(ValueError, match="ViT-B/32"):
        clip.load("ViT-L/14", device="cpu", jit=False)
    with pytest.raises(ValueError, match="jit=False"):
        clip.load("ViT-B/32", device="cpu", jit=True)
    previous = clip_compat.configured_weights()
    clip_compat.configure("random")
    try:
        model, preprocess = clip.load("ViT-B/32", device="cpu", jit=False)
    finally:
        clip_compat.configure(previous)
    assert callable(preprocess)
    assert model.text_projection.dtype == torch.float32  # OpenAI's clip.load on CPU is fp32
    clip.model.convert_weights(model)
    assert model.text_projection.dtype == torch.float16
    assert model.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert model.token_embedding.weight.dtype == torch.float32


@pytest.mark.upstream
def test_configure_makes_clip_paths_absolute(tmp_path, monkeypatch):
    from mdm_kinemic.mdm.upstream import clip_compat

    previous = clip_compat.configured_weights()
    monkeypatch.chdir(tmp_path)
    try:
        clip_compat.configure("weights/ViT-B-32.pt")
        assert clip_compat.configured_weights() == str(tmp_path / "weights" / "ViT-B-32.pt")
    finally:
        clip_compat.configure(previous)


@pytest.mark.upstream
def test_upstream_mdm_encodes_text_as_text_clip_does():
    """Upstream's own clip_encode_text (context 22, zero-padded, fp16 CLIP) through the stand-in
    equals text.clip.encode_text on an fp16 CLIP."""
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import upstream_default_args
    from mdm_kinemic.mdm.model.build import build_upstream_model
    from mdm_kinemic.text import clip as text_clip

    import_upstream(clip_weights="random")
    args = upstream_default_args()
    args.layers, args.latent_dim = 1, 32
    model, _ = build_upstream_model(args)
    texts = ["a person walks forward.", " ".join(["jump"] * 25)]
    with torch.no_grad():
        upstream = model.encode_text(texts)
    assert upstream.shape == (1, 2, 512)
    expected = text_clip.encode_text(text_clip.load_clip("random", precision="fp16"), texts, context_length=22)
    assert torch.equal(upstream[0], expected)


@pytest.mark.upstream
def test_smpl_pass_through_where_files_are_absent():
    from mdm_kinemic.mdm.upstream import smpl_compat

    root = import_upstream()
    if smpl_compat.smpl_files_present(root):
        pytest.skip("SMPL files are installed here; the pass-through is not used")
    import utils.config
    from model.rotation2xyz import Rotation2xyz

    assert utils.config.SMPL_MODEL_PATH == str(root / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl")
    rot2xyz = Rotation2xyz(device="cpu", dataset="humanml")
    assert isinstance(rot2xyz.smpl_model, smpl_compat.SMPLUnavailable)
    assert list(rot2xyz.smpl_model.parameters()) == []
    joints = torch.randn(2, 22, 3, 40)
    # sample/generate.py's call for hml_vec models: joints in, the same joints out
    out = rot2xyz(x=joints, mask=None, pose_rep="xyz", glob=True, translation=True, jointstype="smpl",
                  vertstrans=True, betas=None, beta=0, glob_rot=None, get_rotations_back=False)
    assert out is joints
    with pytest.raises(smpl_compat.SMPLUnavailableError) as err:
        rot2xyz(x=torch.randn(1, 25, 6, 10), mask=None, pose_rep="rot6d", glob=True, translation=True,
                jointstype="smpl", vertstrans=True)
    assert str(root / "body_models" / "smpl") in str(err.value)
    assert "download_smpl_files.sh" in str(err.value)


@pytest.mark.upstream
def test_mdm_moves_and_switches_mode_with_the_pass_through():
    from mdm_kinemic.mdm.model.build import _quiet_upstream

    import_upstream()
    from model.mdm import MDM

    model = _quiet_upstream(
        MDM, modeltype="", njoints=263, nfeats=1, num_actions=1, translation=True, pose_rep="rot6d", glob=True,
        glob_rot=True, latent_dim=32, ff_size=64, num_layers=1, num_heads=4, data_rep="hml_vec",
        cond_mode="no_cond", dataset="humanml",
    )
    assert model.to(torch.float64) is None  # upstream's _apply override returns None
    assert next(model.parameters()).dtype == torch.float64
    model.eval()
    assert not model.training and not model.rot2xyz.smpl_model.training
    model.train()
    assert model.rot2xyz.smpl_model.training
    assert not any(k.startswith("rot2xyz") for k in model.state_dict())


@pytest.mark.upstream
def test_upstream_cwd_restores_the_directory(tmp_path, monkeypatch):
    root = import_upstream()
    monkeypatch.chdir(tmp_path)
    user_file = resolve_user_path("data/clip.npy")
    with upstream_cwd() as inside:
        assert Path.cwd() == inside == root
        assert user_file == tmp_path / "data" / "clip.npy"  # resolved before the chdir
    assert Path.cwd() == tmp_path
    with pytest.raises(KeyError), upstream_cwd():
        raise KeyError("boom")
    assert Path.cwd() == tmp_path


@pytest.mark.upstream
def test_a_second_root_in_one_process_is_refused(tmp_path):
    root = import_upstream()
    other = tmp_path / "other_mdm"
    other.symlink_to(root, target_is_directory=True)
    with pytest.raises(UpstreamConflictError, match=str(other)):
        import_upstream(other)
    assert import_upstream(root) == root  # idempotent for the same root
