"""LoRA on upstream MDM through peft: the validated target list and the injection (Sec. 4 of the paper).

The student G^T is the pre-trained MDM with LoRA (rank 16, alpha 32, dropout 0.1) on all its
layers. Placement, as in the authors' code: every attention block (peft's LoRA for
``nn.MultiheadAttention``, targeted as the whole ``self_attn`` module, which adapts in_proj and
out_proj), both feed-forward linears of every block, the input process, the output process and the
timestep embedding's two linears. Never ``embed_text`` (the pre-trained text projection stays
frozen), never the LayerNorms, never CLIP.

peft's attention LoRA merges the adapter into the base weights before each forward and subtracts it
afterwards; in float32, (W + dW) - dW is not always W, so every student forward would move ~2 % of
the attention weights by one ulp and the frozen teacher would drift over training. ``inject_lora``
therefore re-registers the original base tensors after each attention forward (no copy is kept).
No LoRA dropout acts on attention: peft's merged attention forward has no place for it, which is also
what the authors' code does.

Load the upstream checkpoint before calling ``inject_lora``: peft renames the adapted base keys
(``linear1.weight`` becomes ``linear1.base_layer.weight``), which upstream's load_model_wo_clip
rejects.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import nn

# Full module names inside upstream MDM (model/mdm.py, arch trans_enc); peft fullmatches the regex.
LORA_TARGETS: dict[str, str] = {
    "attention": r"seqTransEncoder\.layers\.\d+\.self_attn",
    "feed_forward": r"seqTransEncoder\.layers\.\d+\.linear[12]",
    "input_process": r"input_process\.poseEmbedding",
    "output_process": r"output_process\.poseFinal",
    "timestep_embedding": r"embed_timestep\.time_embed\.[02]",
}


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters and placement of the student (paper Sec. 4; defaults table in DESIGN.md).

    Raises:
        ValueError: a field out of range, naming the field and the accepted values.
    """

    rank: int = field(default=16, metadata={"help": "LoRA rank r on every adapted layer (paper Sec. 4: 16)"})
    alpha: float = field(default=32.0, metadata={"help": "LoRA alpha; the update is scaled by alpha / r (paper: 32)"})
    dropout: float = field(
        default=0.1,
        metadata={"help": "dropout on the LoRA input of adapted linear layers, none on attention (paper: 0.1)"},
    )
    targets: tuple[str, ...] = field(
        default=tuple(LORA_TARGETS),
        metadata={"choices": tuple(LORA_TARGETS), "help": "layer groups that get LoRA (paper: all layers; embed_text, LayerNorms and CLIP never)"},
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoraSettings.rank must be an integer >= 1, got {self.rank!r}")
        if not self.alpha > 0:
            raise ValueError(f"LoraSettings.alpha must be > 0, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraSettings.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.targets:
            raise ValueError(f"LoraSettings.targets must name at least one of {sorted(LORA_TARGETS)}")
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown:
            raise ValueError(
                f"LoraSettings.targets: unknown {unknown}; accepted values are {sorted(LORA_TARGETS)} "
                "(embed_text, the LayerNorms and CLIP are never adapted)"
            )
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"LoraSettings.targets lists a group twice: {list(self.targets)}")
        if self.dropout > 0 and self.targets == ("attention",):
            warnings.warn(
                "LoraSettings.dropout is ignored: the only target is attention, where peft applies no "
                "LoRA dropout",
                stacklevel=3,
            )

    @property
    def scaling(self) -> float:
        """alpha / rank, the factor of the low-rank update B A."""
        return self.alpha / self.rank

    def target_regex(self) -> str:
        """The regex over MDM module names that peft fullmatches, one alternative per target group."""
        return "|".join(f"(?:{LORA_TARGETS[t]})" for t in self.targets)

    def peft_config(self) -> Any:
        """The equivalent ``peft.LoraConfig`` (bias untouched, adapters initialised B = 0)."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_regex(),
            bias="none",
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stored in the kinemic section of a checkpoint's args.json)."""
        out = asdict(self)
        out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoraSettings:
        """Inverse of ``to_json``; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"LoRA settings: unknown keys {sorted(unknown)}; accepted keys are {sorted(known)}")
        return cls(**{k: (tuple(v) if k == "targets" else v) for k, v in data.items()})


def inject_lora(model: nn.Module, settings: LoraSettings) -> Any:
    """Wrap an upstream MDM (or KineMICMDM) whose base weights are already loaded in a peft LoRA model.

    Every base parameter is frozen (peft); the adapters are the only trainable parameters until the
    caller unfreezes its own additions (the action embedding). Attention base weights are kept
    bit-exact across forwards (see the module docstring).

    Args:
        model: an upstream ``model.mdm.MDM`` with arch trans_enc, checkpoint already loaded.
        settings: rank, alpha, dropout and target groups.

    Returns:
        ``peft.PeftModel`` wrapping ``model`` in place (``.get_base_model()`` is ``model``).

    Raises:
        ValueError: a target group matches no module of ``model`` (e.g. a gru or trans_dec model).
    """
    import re

    from peft import get_peft_model

    names = [name for name, _ in model.named_modules()]
    for group in settings.targets:
        if not any(re.fullmatch(LORA_TARGETS[group], name) for name in names):
            raise ValueError(
                f"LoRA target group {group!r} matches no module of {type(model).__name__} "
                f"(pattern {LORA_TARGETS[group]!r}); KineMIC adapts upstream MDM with arch trans_enc only"
            )
    peft_model = get_peft_model(model, settings.peft_config())
    for module in model.modules():
        if _is_lora_attention(module):
            _keep_attention_base_exact(module)
    return peft_model


def set_network_dropout(model: nn.Module, p: float) -> int:
    """Set the dropout probability of every dropout of ``model`` except LoRA's own (``lora_dropout``).

    Upstream's get_model_args (utils/model_util.py) builds MDM with dropout 0.1 whatever the
    checkpoint's args say; this changes the ``nn.Dropout`` modules (positional encoding,
    transformer layers) and the attention's dropout probability in place.

    Args:
        model: the network (a DualStreamMDM or any module).
        p: dropout probability in [0, 1).

    Returns:
        How many dropouts were set.
    """
    count = 0
    for name, module in model.named_modules():
        if "lora_" in name:
            continue
        if isinstance(module, nn.Dropout):
            module.p = p
            count += 1
        elif isinstance(module, nn.MultiheadAttention):
            module.dropout = p
            count += 1
    return count


def lora_parameter_names(model: nn.Module) -> list[str]:
    """Names of the LoRA adapter parameters (``lora_A`` / ``lora_B``) of ``model``."""
    return [name for name, _ in model.named_parameters() if ".lora_A." in name or ".lora_B." in name]


def _is_lora_attention(module: nn.Module) -> bool:
    from peft.tuners.lora.layer import MultiheadAttention as LoraMultiheadAttention

    return isinstance(module, LoraMultiheadAttention)


def _keep_attention_base_exact(module: nn.Module) -> None:
    """Re-register the pre-forward base tensors of a peft LoRA attention after its forward.

    peft merges by replacing ``in_proj_weight`` / ``out_proj.weight`` with W + dW and unmerges by
    registering (W + dW) - dW, which differs from W in the last bit for a few entries. The merged
    weights are created by peft from ``W.detach()``, so swapping the tensor objects back after the
    forward leaves the autograd graph (gradients reach only the adapters) untouched.
    """
    attention = module.get_base_layer()
    stash: dict[str, nn.Parameter] = {}

    def remember(_module: nn.Module, _args: Any) -> None:
        stash["in_proj_weight"] = attention._parameters["in_proj_weight"]
        stash["out_proj_weight"] = attention.out_proj.get_base_layer()._parameters["weight"]

    def restore(_module: nn.Module, _args: Any, _output: Any) -> None:
        if not stash:
            return
        out_linear = attention.out_proj.get_base_layer()
        for owner, key, name in ((attention, "in_proj_weight", "in_proj_weight"),
                                 (out_linear, "weight", "out_proj_weight")):
            original = stash.pop(name)
            if owner._parameters.get(key) is not original:
                if key in owner._parameters:
                    del owner._parameters[key]
                else:
                    delattr(owner, key)
                owner.register_parameter(key, original)

    module.register_forward_pre_hook(remember)
    module.register_forward_hook(restore, always_call=True)
