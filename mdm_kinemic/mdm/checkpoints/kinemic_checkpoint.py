"""KineMIC checkpoints: starting from an upstream MDM, saving and loading what KineMIC trains.

A KineMIC checkpoint folder, written by ``save_kinemic_checkpoint``::

    SAVE/args.json            the base checkpoint's args.json plus a "kinemic" section:
                              base_checkpoint (absolute path), base_sha256, base_use_ema,
                              num_actions, class_names, action_init, teacher_mode, lora {...}
    SAVE/model000005000.pt    {"kinemic_format": 1, "step", "lora": peft adapter state,
                              "action_embedding": [num_actions, d], "extra": {name: state dict}}
    SAVE/opt000005000.pt      the optimizer's state dict

The model file holds no base weight and no CLIP: loading rebuilds the student from the base
checkpoint (verified by sha256), injects LoRA and loads the adapters with peft's own
``set_peft_model_state_dict``, so outputs are reproduced exactly. ``extra`` carries any other
module the caller trains (the MIC module of core/mic.py). Every file is written atomically.

``export_standalone`` merges the adapters into the base weights (peft ``merge_and_unload``) and
writes one upstream-style file ``{"model": state dict, "args": {...}}`` (torch, or safetensors with
the args in its metadata) that ``load_exported`` reads without peft. ``export_peft`` writes a folder
in peft's own format instead, for peft's ``PeftModel.from_pretrained`` onto the base MDM::

    OUT/adapter_config.json, OUT/adapter_model.safetensors, OUT/README.md   peft ``save_pretrained``
    OUT/kinemic_modules.safetensors   action_embedding.weight [num_actions, d] and every extra
                                      module's tensors as NAME.KEY (mic.*: core/mic.py)
    OUT/kinemic_modules.json          format, step, and the shape of every tensor of that file
    OUT/args.json                     the base args.json plus the kinemic section (base checkpoint
                                      path and sha256, class names, LoRA settings)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from mdm_kinemic.atomic import atomic_torch_save, atomic_write_text
from mdm_kinemic.digest import file_sha256
from mdm_kinemic.mdm.model.kinemic_mdm import (
    BaseCheckpoint,
    DualStreamMDM,
    KineMICModelSettings,
    kinemic_mdm_class,
)
from mdm_kinemic.mdm.model.lora import LoraSettings

KINEMIC_SECTION = "kinemic"
KINEMIC_FORMAT = 1
STANDALONE_FORMAT = "kinemic-standalone-1"
PEFT_FORMAT = "kinemic-peft-1"
#: the files of a peft export folder (export_peft), peft's own first
PEFT_EXPORT_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", "kinemic_modules.safetensors",
                     "kinemic_modules.json", "args.json")
_ACTION_PREFIX = "action_embedding."


class KineMICCheckpointError(ValueError):
    """A KineMIC checkpoint that cannot be used; the message names the file and the fix."""


class LoadedKineMIC(NamedTuple):
    """A KineMIC model ready to train or sample.

    Attributes:
        model: the DualStreamMDM (student and teacher on one network), in eval mode.
        diffusion: upstream's SpacedDiffusion for the base checkpoint's args.
        args: upstream's flag Namespace of the base checkpoint (``args.model_path`` = base file).
        step: training step of the loaded KineMIC checkpoint (0 when started from the base).
        extra_state: state dicts of extra modules stored with it ({} when started from the base).
        model_path: the KineMIC model file loaded, or None when started from the base.
    """

    model: DualStreamMDM
    diffusion: Any
    args: argparse.Namespace
    step: int
    extra_state: dict[str, dict[str, torch.Tensor]]
    model_path: Path | None


def start_from_base(
    mdm_ckpt: str | os.PathLike,
    settings: KineMICModelSettings,
    lora: LoraSettings,
    *,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    use_ema: bool | None = None,
    expected_features: int | None = None,
    base_sha256: str | None = None,
) -> LoadedKineMIC:
    """Build the KineMIC student/teacher from a pre-trained upstream MDM checkpoint.

    Loads the upstream weights into a KineMICMDM (action embedding freshly initialised), then
    injects LoRA (peft renames base keys, so the order matters) and unfreezes the action embedding.

    Args:
        mdm_ckpt: ``--mdm_ckpt``: a .pt file, a folder, or a name under upstream's save/
            (e.g. humanml_trans_enc_512); args.json beside it.
        settings: num_actions, class names, action init, teacher mode.
        lora: LoRA settings.
        mdm_root, clip_weights: see ``mdm.upstream.import_upstream``.
        device: where the model goes.
        use_ema: load ``model_avg`` of an EMA checkpoint; None follows its args.json.
        expected_features: the data's feature width (263 HumanML3D, 251 KIT); None skips the check.
        base_sha256: the checkpoint file's sha256 when already known (else it is computed).

    Returns:
        LoadedKineMIC with step 0, no extra state, model in eval mode.

    Raises:
        CheckpointNotFoundError, CheckpointError (mdm/checkpoints/upstream_checkpoint.py): missing or truncated file,
            args.json missing or with an unknown arch, feature width mismatch.
        ValueError: the checkpoint is not a text-conditioned trans_enc MDM.
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
        load_upstream_checkpoint,
        read_args_json,
    )

    loaded = load_upstream_checkpoint(
        mdm_ckpt,
        mdm_root=mdm_root,
        clip_weights=clip_weights,
        device=device,
        use_ema=use_ema,
        expected_features=expected_features,
        model_cls=kinemic_mdm_class(),
        model_kwargs={"action_init": settings.action_init},
        num_actions=settings.num_actions,
        allow_missing=(_ACTION_PREFIX,),
    )
    base_path = Path(loaded.args.model_path)
    base_args = read_args_json(base_path)
    base_args.pop(KINEMIC_SECTION, None)
    base = BaseCheckpoint(
        path=str(base_path),
        sha256=base_sha256 or file_sha256(base_path),
        use_ema=bool(getattr(loaded.args, "use_ema", False)) if use_ema is None else bool(use_ema),
    )
    model = DualStreamMDM.from_base(loaded.model, settings, lora, upstream_args=base_args, base=base)
    model.to(device)
    model.eval()
    return LoadedKineMIC(model, loaded.diffusion, loaded.args, 0, {}, None)


def kinemic_section(model: DualStreamMDM) -> dict[str, Any]:
    """The "kinemic" section of args.json for ``model``."""
    if model.base is None:
        raise ValueError("model has no base checkpoint: build it with start_from_base or load_kinemic_checkpoint")
    return {
        "base_checkpoint": model.base.path,
        "base_sha256": model.base.sha256,
        "base_use_ema": model.base.use_ema,
        **model.settings.to_json(),
        "lora": model.lora.to_json(),
        "kinemic_format": KINEMIC_FORMAT,
    }


def model_file(save_dir: str | os.PathLike, step: int) -> Path:
    """``SAVE/model%09d.pt`` (upstream's naming)."""
    return Path(save_dir) / f"model{step:09d}.pt"


def optimizer_file(model_path: str | os.PathLike) -> Path:
    """``opt%09d.pt`` beside ``model%09d.pt`` (upstream's naming)."""
    path = Path(model_path)
    return path.with_name(path.name.replace("model", "opt", 1))


def save_kinemic_checkpoint(
    save_dir: str | os.PathLike,
    step: int,
    model: DualStreamMDM,
    optimizer: torch.optim.Optimizer | None = None,
    extra_modules: Mapping[str, nn.Module] | None = None,
) -> Path:
    """Write args.json, model%09d.pt (adapters, action embedding, extras) and opt%09d.pt.

    Args:
        save_dir: the KineMIC checkpoint folder (created).
        step: training step, in the file names.
        model: the DualStreamMDM being trained (from ``start_from_base`` or ``load_kinemic_checkpoint``).
        optimizer: its state goes to opt%09d.pt; None writes no optimizer file.
        extra_modules: other trained modules by name (e.g. {"mic": mic}); their state dicts are stored.

    Returns:
        Path of model%09d.pt.

    Raises:
        ValueError: step < 0, or ``model`` does not know its base checkpoint.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    folder = Path(save_dir)
    folder.mkdir(parents=True, exist_ok=True)
    args = {**model.upstream_args, KINEMIC_SECTION: kinemic_section(model)}
    atomic_write_text(folder / "args.json", json.dumps(args, indent=4, sort_keys=True))
    payload = {
        "kinemic_format": KINEMIC_FORMAT,
        "step": step,
        **model.adapter_state_dict(),
        "extra": {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in (extra_modules or {}).items()},
    }
    payload["lora"] = {k: v.cpu() for k, v in payload["lora"].items()}
    payload["action_embedding"] = payload["action_embedding"].cpu()
    path = model_file(folder, step)
    atomic_torch_save(path, payload)
    if optimizer is not None:
        atomic_torch_save(optimizer_file(path), optimizer.state_dict())
    return path


def resolve_model_file(model_path: str | os.PathLike) -> Path:
    """A model file from a file or a checkpoint folder (its latest model*.pt), absolute.

    Raises:
        FileNotFoundError: no such file, or a folder without model*.pt.
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import latest_model_file

    path = Path(os.path.abspath(os.path.expanduser(os.fspath(model_path))))
    if path.is_dir():
        found = latest_model_file(path)
        if found is None:
            raise FileNotFoundError(f"checkpoint folder {path} holds no model*.pt; pass a model%09d.pt file or its folder")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass SAVE/model%09d.pt or the SAVE folder")
    return path


def read_kinemic_args(model_path: str | os.PathLike) -> dict[str, Any]:
    """args.json beside a KineMIC model file, checked to hold a kinemic section.

    Raises:
        KineMICCheckpointError: args.json missing, unreadable, or without a kinemic section.
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
        CheckpointError,
        args_path_for,
        read_args_json,
    )

    path = args_path_for(model_path)
    try:
        args = read_args_json(model_path)
    except CheckpointError as err:
        raise KineMICCheckpointError(str(err)) from err
    if not isinstance(args.get(KINEMIC_SECTION), dict):
        raise KineMICCheckpointError(
            f"{path} has no '{KINEMIC_SECTION}' section: {Path(model_path).name} is not a KineMIC checkpoint. "
            "An upstream MDM checkpoint is passed as --mdm_ckpt instead."
        )
    return args


def _read_payload(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle and format errors all mean "unreadable" here
        raise KineMICCheckpointError(
            f"KineMIC checkpoint {path} is unreadable ({type(err).__name__}: {err}); it is probably truncated. "
            "Fix: copy it again, or load an earlier model%09d.pt of the same folder."
        ) from err
    if not isinstance(payload, dict) or payload.get("kinemic_format") != KINEMIC_FORMAT:
        raise KineMICCheckpointError(
            f"{path} is not a KineMIC adapter checkpoint (format {KINEMIC_FORMAT}); "
            "an upstream MDM checkpoint is passed as --mdm_ckpt instead"
        )
    return payload


def load_kinemic_checkpoint(
    model_path: str | os.PathLike,
    *,
    num_actions: int | None = None,
    extra_modules: Mapping[str, nn.Module] | None = None,
    base_checkpoint: str | os.PathLike | None = None,
    verify_base: bool = True,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> LoadedKineMIC:
    """Rebuild a trained KineMIC model from its checkpoint folder.

    Args:
        model_path: SAVE/model%09d.pt, or SAVE (its latest model file).
        num_actions: the number of action classes the caller's labels have; None skips the check.
        extra_modules: modules to load stored extras into, by name (strict); every name must be stored.
        base_checkpoint: the base MDM file when it moved since training; None uses args.json's path.
        verify_base: check the base file's sha256 against args.json's.
        mdm_root, clip_weights, device: as for ``start_from_base``.

    Returns:
        LoadedKineMIC (model in eval mode, step and extra state from the file).

    Raises:
        FileNotFoundError: no such model file, or the base checkpoint is gone.
        KineMICCheckpointError: args.json missing or without a kinemic section; unreadable model
            file; num_actions mismatch (the caller's, args.json's and the stored embedding's);
            base checkpoint with another sha256; an extra module missing from the file.
    """
    path = resolve_model_file(model_path)
    args_json = read_kinemic_args(path)
    section = args_json[KINEMIC_SECTION]
    settings = KineMICModelSettings.from_json(section)
    stored_actions = settings.num_actions
    names = f" ({', '.join(settings.class_names)})" if settings.class_names else ""
    if num_actions is not None and num_actions != stored_actions:
        raise KineMICCheckpointError(
            f"num_actions mismatch: {path} was trained for {stored_actions} action classes{names}, but "
            f"{num_actions} were requested. Fix: use the labels (classes.txt) the checkpoint was trained on, "
            "or train a new KineMIC checkpoint for these classes."
        )
    payload = _read_payload(path)
    rows = int(payload["action_embedding"].shape[0])
    if rows != stored_actions:
        raise KineMICCheckpointError(
            f"num_actions mismatch: {path} stores an action embedding for {rows} classes but "
            f"{path.parent / 'args.json'} says num_actions={stored_actions}. Fix: the files come from "
            "different runs; restore the args.json saved with this model file."
        )
    extra_state = dict(payload.get("extra", {}))
    absent = sorted(set(extra_modules or {}) - set(extra_state))
    if absent:
        raise KineMICCheckpointError(
            f"{path} stores no module {absent} (it has {sorted(extra_state)}): it was saved without them"
        )
    base = Path(os.path.abspath(os.path.expanduser(os.fspath(base_checkpoint or section["base_checkpoint"]))))
    if not base.is_file():
        raise FileNotFoundError(
            f"The base MDM checkpoint of {path} is not at {base}. Fix: pass base_checkpoint= "
            "(--mdm_ckpt) pointing at the same file (args.json records its sha256)."
        )
    sha256 = file_sha256(base) if verify_base or not section.get("base_sha256") else section["base_sha256"]
    if verify_base and section.get("base_sha256") and sha256 != section["base_sha256"]:
        raise KineMICCheckpointError(
            f"{base} is not the base checkpoint {path} was trained from (sha256 differs from "
            f"{path.parent / 'args.json'}). Fix: point --mdm_ckpt at the original base checkpoint."
        )
    loaded = start_from_base(
        base,
        settings,
        LoraSettings.from_json(section["lora"]),
        mdm_root=mdm_root,
        clip_weights=clip_weights,
        device=device,
        use_ema=bool(section.get("base_use_ema", False)),
        base_sha256=sha256,
    )
    loaded.model.load_adapter_state_dict(payload, source=str(path))
    for name, module in (extra_modules or {}).items():
        module.load_state_dict(extra_state[name])
    return loaded._replace(step=int(payload["step"]), extra_state=extra_state, model_path=path)


def load_optimizer_state(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The optimizer state saved beside a KineMIC model file, or None when there is none."""
    path = optimizer_file(model_path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def export_standalone(loaded: LoadedKineMIC, out: str | os.PathLike, *, safetensors: bool = False) -> Path:
    """Merge the LoRA adapters into the base weights and write one file loadable without peft.

    The torch file is ``{"model": state dict (no CLIP), "args": base args.json + kinemic section,
    "format": "kinemic-standalone-1"}``; upstream's ``load_saved_model`` reads its "model" key
    into a KineMICMDM as well. The safetensors file holds the same state dict, with "format" and
    "args" (JSON text) in its metadata. ``loaded.model`` is consumed (peft unloads its layers).

    Args:
        loaded: from ``load_kinemic_checkpoint``.
        out: output file.
        safetensors: write safetensors instead of a torch file.

    Returns:
        The written path.
    """
    from mdm_kinemic.atomic import atomic_write_bytes

    model = loaded.model
    section = kinemic_section(model)
    merged = model.network.merge_and_unload()
    state = {k: v.detach().cpu() for k, v in merged.state_dict().items() if not k.startswith("clip_model.")}
    args = {**model.upstream_args, KINEMIC_SECTION: {**section, "exported_from": str(loaded.model_path)}}
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    path.parent.mkdir(parents=True, exist_ok=True)
    if safetensors:
        from safetensors.torch import save

        metadata = {"format": STANDALONE_FORMAT, "args": json.dumps(args, sort_keys=True)}
        atomic_write_bytes(path, save(_unshared(state), metadata=metadata))
    else:
        atomic_torch_save(path, {"format": STANDALONE_FORMAT, "model": state, "args": args})
    return path


def _unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every tensor contiguous and its own storage, as safetensors demands (upstream MDM
    reaches its positional encoding through two modules, so two keys share one tensor)."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        pointer = value.untyped_storage().data_ptr()
        out[key] = value.clone().contiguous() if pointer in seen else value.contiguous()
        seen.add(pointer)
    return out


def export_peft(loaded: LoadedKineMIC, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the adapters in peft's own format and the other trained modules in safetensors.

    The folder's files are listed in the module docstring (PEFT_EXPORT_FILES). Rebuild the student
    with ``peft.PeftModel.from_pretrained(base, OUT)`` on the KineMICMDM of the base checkpoint
    (``start_from_base`` without LoRA: upstream_checkpoint.load_upstream_checkpoint with
    ``model_cls=kinemic_mdm_class()``), then copy ``action_embedding.weight`` into its action
    embedding. The folder is written beside ``out`` and renamed onto it, so that a failed export
    leaves no partial folder; an earlier export there is replaced only with ``overwrite``.

    Args:
        loaded: from ``load_kinemic_checkpoint`` (its extra state holds the MIC module).
        out: output folder.
        overwrite: replace an existing folder, which must hold only a peft export's files.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False, or it holds other files.
    """
    import shutil

    from safetensors.torch import save

    folder = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; pass --overwrite to replace it, or choose another --out")
    if folder.exists():
        others = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [folder.name]
        others = [name for name in others if name not in PEFT_EXPORT_FILES]
        if others or not folder.is_dir():
            raise FileExistsError(
                f"{folder} holds files a peft export does not write ({', '.join(others[:4])}); --overwrite replaces "
                "only an earlier peft export. Choose another --out"
            )
    model = loaded.model
    tensors = {"action_embedding.weight": model.mdm.action_embedding.weight.detach().cpu().contiguous()}
    for name, state in sorted(loaded.extra_state.items()):
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in state.items()})
    shapes = {
        "format": PEFT_FORMAT,
        "step": loaded.step,
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    args = {**model.upstream_args, KINEMIC_SECTION: {**kinemic_section(model), "exported_from": str(loaded.model_path)}}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed export of this process id
    staging.mkdir()
    try:
        model.network.save_pretrained(str(staging), safe_serialization=True)
        (staging / "kinemic_modules.safetensors").write_bytes(save(tensors))
        (staging / "kinemic_modules.json").write_text(json.dumps(shapes, indent=1) + "\n", encoding="utf-8")
        (staging / "args.json").write_text(json.dumps(args, indent=4, sort_keys=True), encoding="utf-8")
        # safetensors' own writer makes owner-only files; give peft's the mode the others got (umask)
        shutil.copymode(staging / "args.json", staging / "adapter_model.safetensors")
        written = sorted(p.name for p in staging.iterdir())
        if written != sorted(PEFT_EXPORT_FILES):
            raise RuntimeError(f"peft's save_pretrained wrote {written}; expected {sorted(PEFT_EXPORT_FILES)}")
        earlier = folder.parent / f".{folder.name}.{os.getpid()}.old"
        if folder.exists():
            os.replace(folder, earlier)  # renamed aside, so that a failed rename below can put it back
        try:
            os.replace(staging, folder)
        except BaseException:
            if earlier.exists():
                os.replace(earlier, folder)
            raise
        shutil.rmtree(earlier, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _read_exported(file: Path) -> Any:
    """The payload of an exported file: torch's dict, or the same dict rebuilt from safetensors."""
    if file.suffix != ".safetensors":
        return torch.load(file, map_location="cpu", weights_only=True)
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as handle:
        metadata = handle.metadata() or {}
        names = handle.keys()  # a safetensors handle, not a dict: no iteration over it
        state = {k: handle.get_tensor(k) for k in names}
    return {"format": metadata.get("format"), "model": state, "args": json.loads(metadata.get("args", "{}"))}


def load_exported(
    path: str | os.PathLike,
    *,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, Any, argparse.Namespace]:
    """Load a file written by ``export_standalone`` (torch or ``.safetensors``) into a KineMICMDM, without peft.

    Returns:
        (KineMICMDM in eval mode, upstream SpacedDiffusion, upstream flag Namespace).

    Raises:
        KineMICCheckpointError: not a standalone KineMIC file, or unreadable.
        CheckpointError (mdm/checkpoints/upstream_checkpoint.py): weights that do not fit the stored args.
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
        build_upstream_model,
        load_weights,
        upstream_default_args,
    )
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream(mdm_root, clip_weights=clip_weights)
    from utils.parser_util import apply_rules

    file = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    try:
        payload = _read_exported(file)
    except Exception as err:  # truncated zip, pickle and format errors all mean "unreadable" here
        raise KineMICCheckpointError(f"{file} is unreadable ({type(err).__name__}: {err}); export it again") from err
    if not isinstance(payload, dict) or payload.get("format") != STANDALONE_FORMAT:
        raise KineMICCheckpointError(f"{file} is not a standalone KineMIC file; write one with python -m mdm_kinemic.export")
    saved = dict(payload["args"])
    settings = KineMICModelSettings.from_json(saved[KINEMIC_SECTION])
    args = upstream_default_args()
    for key, value in saved.items():
        setattr(args, key, value)
    args = apply_rules(args)
    model, diffusion = build_upstream_model(
        args,
        model_cls=kinemic_mdm_class(),
        num_actions=settings.num_actions,
        model_kwargs={"action_init": settings.action_init},
    )
    load_weights(model, payload["model"], file)
    model.to(device)
    model.eval()
    args.model_path = str(file)
    return model, diffusion, args
