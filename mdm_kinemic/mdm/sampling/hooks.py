"""The no-patch route: the model plugin hooked into UNMODIFIED upstream scripts, at run time.

``install_hooks(plugin)`` wraps, inside upstream's modules, the functions that patches/0001 edits,
so that ``python -m mdm_kinemic.run sample.generate --kinemic ...`` behaves as
``python -m sample.generate --kinemic ...`` on a patched upstream. Scripts bind these names when
they run (``from utils.model_util import create_model_and_diffusion``), which mdm_kinemic.run does
after installing the hooks, so upstream's files stay untouched. Every wrapper calls upstream's
original unless the plugin is switched on (``--kinemic``):

================================================  =============================================
upstream name                                     with the plugin on
================================================  =============================================
utils.parser_util.add_base_options                also adds the plugin's options (every script)
utils.parser_util.apply_rules                     then ``plugin.apply_rules(args)``
utils.parser_util.get_cond_mode                   ``plugin.cond_mode(args)`` ('text_action')
utils.parser_util.generate_args                   upstream's, with condition checks that accept
                                                  a model conditioned on text and action at once
utils.model_util.create_model_and_diffusion       ``plugin.create_model_and_diffusion``
utils.model_util.load_saved_model                 ``plugin.load_saved_model`` for its models
utils.sampler_util.ClassifierFreeSampleModel      one-batch dual guidance (mdm/sampling/sampler.py) for its
                                                  models
data_loaders.get_data.get_dataset_loader          ``plugin.get_dataset_loader`` (generate.py's
                                                  light dataset: no HumanML3D needed)
data_loaders.tensors.collate                      adds each sample's action to generate.py's
                                                  text-prompt batch (dual composition)
================================================  =============================================

Plus, for every script: upstream's plot_3d_motion made to draw with matplotlib >= 3.6
(mdm/upstream/plotting.py); for train/train_mdm.py, ``--data_dir`` honoured (mdm/upstream/hml_data.py); for
generate.py with a plain text-to-motion model and prompts (--text_prompt / --input_text) but no
./dataset/HumanML3D, the light dataset with the Mean/Std of ``--norm_stats`` (or ``--data_dir``).
"""

from __future__ import annotations

import argparse
import functools
import logging
from typing import Any

__all__ = ["SESSION", "HookSession", "install_hooks"]

logger = logging.getLogger(__name__)


class HookSession:
    """State the hooks share within one script run: the script's parsed arguments (the first
    namespace apply_rules sees; the runner runs one script per process) and whether the plugin
    is switched on for them."""

    def __init__(self) -> None:
        self.args: argparse.Namespace | None = None
        self.plugin_active = False
        self.installed = False


SESSION = HookSession()


def _generate_args(parser_util) -> argparse.Namespace:
    """Upstream's generate_args (utils/parser_util.py), built from its own option groups; only its
    condition checks differ: a condition mode naming both text and action accepts both."""
    parser = argparse.ArgumentParser()
    parser_util.add_base_options(parser)
    parser_util.add_sampling_options(parser)
    parser_util.add_generate_options(parser)
    args = parser_util.parse_and_load_from_model(parser)
    cond_mode = set(parser_util.get_cond_mode(args).split("_"))
    # upstream's exception type and messages, so that its users recognise them
    if (args.input_text or args.text_prompt) and "text" not in cond_mode:
        raise Exception("Arguments input_text and text_prompt should not be used for an action condition. "  # noqa: TRY002
                        "Please use action_file or action_name.")
    if (args.action_file or args.action_name) and "action" not in cond_mode:
        raise Exception("Arguments action_file and action_name should not be used for a text condition. "  # noqa: TRY002
                        "Please use input_text or text_prompt.")
    return args


def install_hooks(plugin: Any) -> None:
    """Wrap upstream's functions as the table in the module docstring says (idempotent).

    Requires upstream importable (mdm/upstream/locate.py ``import_upstream``) and unpatched (a patched
    upstream calls the plugin itself).

    Args:
        plugin: a model plugin (mdm/sampling/plugin.py ``PLUGIN``).
    """
    if SESSION.installed:
        return
    from data_loaders import get_data, tensors
    from utils import model_util, parser_util, sampler_util

    from mdm_kinemic.mdm.sampling.sampler import BatchedGuidance
    from mdm_kinemic.mdm.upstream.plotting import install_plot_fix

    original = {
        "add_base_options": parser_util.add_base_options,
        "apply_rules": parser_util.apply_rules,
        "get_cond_mode": parser_util.get_cond_mode,
        "create_model_and_diffusion": model_util.create_model_and_diffusion,
        "load_saved_model": model_util.load_saved_model,
        "ClassifierFreeSampleModel": sampler_util.ClassifierFreeSampleModel,
        "get_dataset_loader": get_data.get_dataset_loader,
        "collate": tensors.collate,
    }

    @functools.wraps(original["add_base_options"])
    def add_base_options(parser):
        original["add_base_options"](parser)
        plugin.add_options(parser)

    @functools.wraps(original["apply_rules"])
    def apply_rules(args):
        args = original["apply_rules"](args)
        active = plugin.is_active(args)
        if active:
            args = plugin.apply_rules(args)
        if SESSION.args is None:
            # the script's own parse comes first; later calls read checkpoints' args.json
            SESSION.args, SESSION.plugin_active = args, active
        return args

    @functools.wraps(original["get_cond_mode"])
    def get_cond_mode(args):
        if plugin.is_active(args):
            return plugin.cond_mode(args)
        return original["get_cond_mode"](args)

    @functools.wraps(original["create_model_and_diffusion"])
    def create_model_and_diffusion(args, data):
        if plugin.is_active(args):
            return plugin.create_model_and_diffusion(args, data)
        return original["create_model_and_diffusion"](args, data)

    @functools.wraps(original["load_saved_model"])
    def load_saved_model(model, model_path, use_avg=False):
        if plugin.owns_model(model):
            return plugin.load_saved_model(model, model_path, use_avg)
        return original["load_saved_model"](model, model_path, use_avg=use_avg)

    def classifier_free_sample_model(model):
        """Upstream's ClassifierFreeSampleModel, or for the plugin's models one-batch guidance."""
        if plugin.owns_model(model):
            return BatchedGuidance(model)
        return original["ClassifierFreeSampleModel"](model)

    @functools.wraps(original["get_dataset_loader"])
    def get_dataset_loader(name, batch_size, num_frames, split="train", hml_mode="train", fixed_len=0, pred_len=0,
                           device=None, autoregressive=False):
        kwargs = {"name": name, "batch_size": batch_size, "num_frames": num_frames, "split": split,
                  "hml_mode": hml_mode, "fixed_len": fixed_len, "pred_len": pred_len, "device": device,
                  "autoregressive": autoregressive}
        args = SESSION.args
        if args is not None and SESSION.plugin_active:
            loader = plugin.get_dataset_loader(args, **kwargs)
            if loader is not None:
                return loader
        elif args is not None and name in ("humanml", "kit") and hml_mode == "text_only":
            loader = _prompt_only_loader(args, name)
            if loader is not None:
                return loader
        elif getattr(args, "data_dir", "") and name == "humanml" and hml_mode == "train":
            from mdm_kinemic.mdm.upstream.hml_data import data_dir_loader

            return data_dir_loader(args.data_dir, **kwargs)
        return original["get_dataset_loader"](**kwargs)

    @functools.wraps(original["collate"])
    def collate(batch):
        return original["collate"](_with_actions(batch))

    parser_util.add_base_options = add_base_options
    parser_util.apply_rules = apply_rules
    parser_util.get_cond_mode = get_cond_mode
    parser_util.generate_args = functools.partial(_generate_args, parser_util)
    model_util.create_model_and_diffusion = create_model_and_diffusion
    model_util.load_saved_model = load_saved_model
    sampler_util.ClassifierFreeSampleModel = classifier_free_sample_model
    get_data.get_dataset_loader = get_dataset_loader
    tensors.collate = collate
    install_plot_fix()
    SESSION.installed = True


def _with_actions(batch: list) -> list:
    """generate.py's text-prompt batch of an active --kinemic run, each entry given its action
    (patches/0001 passes both in generate.py itself). Other batches are returned unchanged:
    dataset batches carry a 'key', action batches an 'action' already."""
    args = SESSION.args
    actions = getattr(args, "kinemic_actions", None) if args is not None else None
    entries = [b for b in batch if b is not None]
    if (
        not actions
        or len(entries) != len(actions)
        or not all(isinstance(b, dict) and "text" in b and "action" not in b and "key" not in b for b in entries)
    ):
        return batch
    names = args.kinemic_info.class_names
    return [dict(b, action=a, action_text=names[a]) for b, a in zip(entries, actions)]


def _prompt_only_loader(args: argparse.Namespace, name: str) -> Any:
    """generate.py's dataset for a plain model sampling given prompts, where upstream's own
    (./dataset/HumanML3D or KIT-ML with texts and splits) is absent: only Mean/Std are read, from
    --norm_stats, else --data_dir, else (HumanML3D layout) HumanML3D's shipped with the package.
    None when upstream's dataset is present or no statistics are found (upstream's loader then
    runs, and reports what is missing)."""
    import os

    import numpy as np

    from mdm_kinemic.data.packaged_stats import HUMANML3D_FEATURES, packaged_stats_folder
    from mdm_kinemic.mdm.sampling.sampling_data import SamplingDataset, SamplingLoader

    prompts = getattr(args, "text_prompt", "") or getattr(args, "input_text", "")
    folder = os.path.join("dataset", "HumanML3D" if name == "humanml" else "KIT-ML")
    if not prompts or os.path.isfile(os.path.join(folder, "test.txt")):
        return None
    shipped = packaged_stats_folder(HUMANML3D_FEATURES) if name == "humanml" else None
    for stats in (getattr(args, "norm_stats", None), getattr(args, "data_dir", ""), shipped and str(shipped)):
        if stats and all(os.path.isfile(os.path.join(stats, f)) for f in ("Mean.npy", "Std.npy")):
            logger.info("no %s: sampling prompts with the Mean/Std of %s", folder, stats)
            return SamplingLoader(SamplingDataset(np.load(os.path.join(stats, "Mean.npy")),
                                                  np.load(os.path.join(stats, "Std.npy")), ()))
    return None
