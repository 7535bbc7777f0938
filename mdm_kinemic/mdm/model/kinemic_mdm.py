"""KineMICMDM: upstream MDM conditioned on text and action together, and its student/teacher streams.

The student G^T (paper Sec. 4) is the pre-trained MDM plus LoRA on all layers plus a learnable
action embedding (num_actions x latent_dim, trained fully). Its condition token is

    emb = embed_text(CLIP(text) or 0) + embed_timestep(t) + (action_embedding[a] or 0)

where "or 0" is a per-sample drop (classifier-free guidance training; the objective draws the
drops, see core/denoiser.py ``Condition``). ``embed_text`` is the pre-trained, frozen projection of
the frozen CLIP ViT-B/32 text feature, so a dropped text gives upstream's null condition
``embed_text(0)``. Upstream's own forward cannot express this: a cond_mode holding both 'text' and
'action' silently drops the text (model/mdm.py), so KineMICMDM overrides ``forward``.

The teacher G^P is not a second network: it is the same object with the LoRA adapters disabled
(peft's ``disable_adapter``), without the action embedding, in eval mode, conditioned on the source
caption; ``DualStreamMDM.teacher`` is that view, ``DualStreamMDM.student`` the adapted one. Base
weights and CLIP are held once.

Upstream is imported lazily: ``kinemic_mdm_class()`` (or the module attribute ``KineMICMDM``)
calls ``import_upstream()`` before subclassing ``model.mdm.MDM``.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import Tensor, nn

from mdm_kinemic.core.denoiser import Condition, DenoiserOutput
from mdm_kinemic.mdm.model.lora import LoraSettings, inject_lora, lora_parameter_names

ACTION_INITS = ("normal", "randn")
TEACHER_MODES = ("eval", "train")
ACTION_EMBEDDING_STD = 0.02


@dataclass(frozen=True)
class KineMICModelSettings:
    """What KineMIC adds to an upstream MDM, stored in the ``kinemic`` section of args.json.

    Raises:
        ValueError: a field out of range, naming the field and the accepted values.
    """

    num_actions: int = field(metadata={"help": "Number of target action classes (rows of the action embedding)."})
    class_names: tuple[str, ...] = field(
        default=(), metadata={"help": "Name of each action class, in class-index order (optional)."}
    )
    action_init: str = field(
        default="normal",
        metadata={
            "choices": ACTION_INITS,
            "help": "Action embedding init: 'normal' = N(0, 0.02^2) (ours; the paper is silent), "
            "'randn' = N(0, 1) (the authors' code)."
        },
    )
    teacher_mode: str = field(
        default="eval",
        metadata={
            "choices": TEACHER_MODES,
            "help": "Module mode of the frozen teacher: 'eval' (deterministic, ours) or 'train' "
            "(dropout active, the authors' code)."
        },
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if isinstance(self.num_actions, bool) or not isinstance(self.num_actions, int) or self.num_actions < 1:
            raise ValueError(f"KineMICModelSettings.num_actions must be an integer >= 1, got {self.num_actions!r}")
        if self.class_names and len(self.class_names) != self.num_actions:
            raise ValueError(
                f"KineMICModelSettings.class_names has {len(self.class_names)} names but num_actions is "
                f"{self.num_actions}; give one name per class or none"
            )
        if self.action_init not in ACTION_INITS:
            raise ValueError(f"KineMICModelSettings.action_init={self.action_init!r}: accepted values are {ACTION_INITS}")
        if self.teacher_mode not in TEACHER_MODES:
            raise ValueError(f"KineMICModelSettings.teacher_mode={self.teacher_mode!r}: accepted values are {TEACHER_MODES}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KineMICModelSettings:
        """Inverse of ``to_json``; keys that are not fields are ignored (the kinemic section holds more)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_KINEMIC_MDM_CLASS: type | None = None


def kinemic_mdm_class() -> type:
    """The KineMICMDM class, built on first use (calling ``import_upstream()`` if no caller did).

    Returns:
        ``KineMICMDM``, a subclass of upstream's ``model.mdm.MDM``.

    Raises:
        UpstreamNotFoundError: upstream MDM cannot be located (see mdm/upstream/locate.py).
    """
    global _KINEMIC_MDM_CLASS
    if _KINEMIC_MDM_CLASS is None:
        from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_state

        if upstream_state() is None:
            import_upstream()
        from model.mdm import MDM

        _KINEMIC_MDM_CLASS = _define_kinemic_mdm(MDM)
    return _KINEMIC_MDM_CLASS


def __getattr__(name: str) -> Any:
    if name == "KineMICMDM":
        return kinemic_mdm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define_kinemic_mdm(MDM: type) -> type:
    class KineMICMDM(MDM):
        """Upstream MDM (arch trans_enc, CLIP text) plus a learnable action embedding.

        Constructor: upstream ``MDM``'s arguments (``num_actions`` = number of target action classes)
        plus ``action_init`` ('normal': N(0, 0.02^2), ours; 'randn': N(0, 1), the authors' code).

        Attributes:
            action_embedding: nn.Embedding(num_actions, latent_dim), trained fully.

        Raises:
            ValueError: an upstream configuration KineMIC does not support (arch other than
                trans_enc, no text condition, BERT text encoder, concatenated condition tokens,
                prefix completion, target-location conditioning) or num_actions < 1.
        """

        def __init__(self, *args: Any, action_init: str = "normal", **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            problems = []
            if self.arch != "trans_enc":
                problems.append(f"arch={self.arch!r} (needs 'trans_enc')")
            if "text" not in self.cond_mode:
                problems.append(f"cond_mode={self.cond_mode!r} (needs a text-conditioned model)")
            if getattr(self, "text_encoder_type", "clip") != "clip":
                problems.append(f"text_encoder_type={self.text_encoder_type!r} (needs 'clip')")
            if self.emb_policy != "add":
                problems.append(f"emb_policy={self.emb_policy!r} (needs 'add')")
            if self.is_prefix_comp:
                problems.append("prefix completion (context_len/pred_len > 0)")
            if self.multi_target_cond:
                problems.append("multi_target_cond")
            if problems:
                raise ValueError(
                    "KineMIC distils a text-to-motion MDM (HumanML3D humanml_trans_enc_512 layout); this "
                    f"checkpoint's args.json has {'; '.join(problems)}"
                )
            if isinstance(self.num_actions, bool) or not isinstance(self.num_actions, int) or self.num_actions < 1:
                raise ValueError(f"KineMICMDM num_actions must be an integer >= 1, got {self.num_actions!r}")
            if action_init not in ACTION_INITS:
                raise ValueError(f"KineMICMDM action_init={action_init!r}: accepted values are {ACTION_INITS}")
            self.action_init = action_init
            self.action_embedding = nn.Embedding(self.num_actions, self.latent_dim)
            std = ACTION_EMBEDDING_STD if action_init == "normal" else 1.0
            nn.init.normal_(self.action_embedding.weight, mean=0.0, std=std)

        def forward(self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None) -> Tensor:
            """Overrides MDM.forward to condition on text and action together (KineMIC, Sec. 4).

            Args:
                x: Tensor [B, F, 1, T], x_t (F = 263 for HumanML3D, T <= 196 frames at 20 fps).
                timesteps: LongTensor [B].
                y: upstream's condition dict, see ``forward_with_features``.

            Returns:
                Tensor [B, F, 1, T], the x0 prediction.
            """
            return self.forward_with_features(x, timesteps, y)[0]

        def forward_with_features(
            self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None
        ) -> tuple[Tensor, Tensor]:
            """One pass returning the x0 prediction and the final block's hidden states.

            Args:
                x: Tensor [B, F, 1, T], x_t.
                timesteps: LongTensor [B].
                y: condition dict with optional keys
                    'text' (B strings) or 'text_embed' (Tensor [1, B, 512], CLIP features; absent
                    both: the null text condition for every sample);
                    'action' (LongTensor [B] or upstream's [B, 1]; absent: no action);
                    'drop_text', 'drop_action' (BoolTensor [B], True = drop that sample's
                    condition); where a drop key is absent, upstream's rule applies (random drop
                    with probability cond_mask_prob in train mode, none in eval mode);
                    'uncond' (True drops both, as upstream's CFG sampler asks);
                    'mask' (BoolTensor [B, 1, 1, T]; masks attention only where the checkpoint's
                    args set mask_frames, as upstream).

            Returns:
                (x0 Tensor [B, F, 1, T], features Tensor [B, T, latent_dim]); features are the
                output of the last transformer block at each frame, the condition token excluded.

            Raises:
                ValueError: an action index outside [0, num_actions).
            """
            y = {} if y is None else y
            bs = x.shape[0]
            force_mask = bool(y.get("uncond", False))
            time_emb = self.embed_timestep(timesteps)  # [1, B, d]
            text_emb = self.embed_text(self._text_condition(y, bs, x.device, force_mask))
            emb = text_emb + time_emb  # upstream's order, so the teacher is bit-identical to MDM
            if y.get("action") is not None:
                emb = emb + self._action_condition(y["action"], y.get("drop_action"), bs, force_mask)

            x = self.input_process(x)  # [T, B, d]
            frames_mask = None
            is_valid_mask = "mask" in y and y["mask"].shape[-1] > 1
            if self.mask_frames and is_valid_mask:
                frames_mask = torch.logical_not(y["mask"][..., : x.shape[0]].squeeze(1).squeeze(1)).to(device=x.device)
                frames_mask = torch.cat([torch.zeros((bs, 1), dtype=torch.bool, device=x.device), frames_mask], dim=1)
            xseq = self.sequence_pos_encoder(torch.cat((emb, x), dim=0))  # [T+1, B, d]
            # the encoder has no final norm (upstream builds it without one): its output is F(x_t)
            hidden = self.seqTransEncoder(xseq, src_key_padding_mask=frames_mask)[1:]  # [T, B, d]
            return self.output_process(hidden), hidden.permute(1, 0, 2)

        def _text_condition(self, y: Mapping[str, Any], bs: int, device: torch.device, force_mask: bool) -> Tensor:
            """CLIP text features [1, B, clip_dim] after the per-sample drop (zeros = null text)."""
            if y.get("text_embed") is not None:
                enc_text = y["text_embed"]
            elif y.get("text") is not None:
                enc_text = self.encode_text(y["text"])
            else:
                return torch.zeros((1, bs, self.clip_dim), device=device)
            drop = y.get("drop_text")
            if force_mask or drop is None:
                return self.mask_cond(enc_text, force_mask=force_mask)
            return enc_text * (1.0 - drop.to(enc_text.dtype).view(1, bs, 1))

        def _action_condition(self, action: Tensor, drop: Tensor | None, bs: int, force_mask: bool) -> Tensor:
            """Action embeddings [1, B, d] after the per-sample drop (zeros = no action)."""
            index = action.reshape(bs, -1)[:, 0].long()
            if bool(((index < 0) | (index >= self.num_actions)).any()):
                raise ValueError(
                    f"action indices {index.tolist()} outside [0, {self.num_actions}): the labels do not "
                    f"match this model's {self.num_actions} action classes"
                )
            action_emb = self.action_embedding(index)[None]  # [1, B, d]
            if force_mask or drop is None:
                return self.mask_cond(action_emb, force_mask=force_mask)
            return action_emb * (1.0 - drop.to(action_emb.dtype).view(1, bs, 1))

        def train(self, *args: Any, **kwargs: Any) -> KineMICMDM:
            """Overrides MDM.train to return self, as nn.Module.train does (upstream returns None)."""
            super().train(*args, **kwargs)
            return self

        def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> KineMICMDM:
            """Overrides MDM._apply to return self, so that ``.to()`` / ``.float()`` chain as in nn.Module."""
            nn.Module._apply(self, fn, *args, **kwargs)
            self.rot2xyz.smpl_model._apply(fn)
            return self

    KineMICMDM.__module__ = __name__
    KineMICMDM.__qualname__ = "KineMICMDM"
    return KineMICMDM


def build_kinemic_mdm(upstream_args: argparse.Namespace, settings: KineMICModelSettings) -> nn.Module:
    """A KineMICMDM with random weights for a checkpoint's args (load the base weights next).

    Args:
        upstream_args: the base checkpoint's args.json as upstream's flag Namespace
            (mdm/checkpoints/upstream_checkpoint.py ``read_checkpoint_args``).
        settings: number of actions and action-embedding init.

    Returns:
        KineMICMDM in train mode on CPU; CLIP loaded through upstream's ``clip.load`` (the
        open_clip stand-in of mdm/upstream/locate.py unless OpenAI's package is installed).
    """
    from mdm_kinemic.mdm.model.build import build_upstream_model

    model, _ = build_upstream_model(
        upstream_args,
        model_cls=kinemic_mdm_class(),
        num_actions=settings.num_actions,
        model_kwargs={"action_init": settings.action_init},
    )
    return model


@dataclass(frozen=True)
class BaseCheckpoint:
    """The pre-trained upstream checkpoint a KineMIC model starts from (recorded in args.json).

    Attributes:
        path: absolute path of the upstream model*.pt file.
        sha256: its hex sha256 (None when not computed).
        use_ema: whether its EMA weights ('model_avg') were loaded.
    """

    path: str
    sha256: str | None = None
    use_ema: bool = False


class TextEmbeddingCache:
    """CLIP text features of recent captions, reused across steps (CLIP is frozen and deterministic).

    Args:
        capacity: number of distinct texts kept (least recently used dropped first).
    """

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 0:
            raise ValueError(f"TextEmbeddingCache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._store: OrderedDict[str, Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every cached text (the model moved to another device)."""
        self._store.clear()

    def add(self, texts: Sequence[str], features: Tensor) -> None:
        """Store precomputed CLIP features, Tensor [N, clip_dim], of N texts."""
        if len(texts) != features.shape[0]:
            raise ValueError(f"{len(texts)} texts for {features.shape[0]} feature rows")
        for text, vector in zip(texts, features):
            self._store[text] = vector
        self._touch(texts)

    def encode(self, mdm: nn.Module, texts: Sequence[str]) -> Tensor:
        """Tensor [1, B, clip_dim], float32, on the model's device: ``mdm.encode_text(texts)``.

        Texts not yet cached are encoded together, once each, without gradient.
        """
        missing = list(dict.fromkeys(t for t in texts if t not in self._store))
        if missing:
            with torch.no_grad():
                encoded = mdm.encode_text(missing)[0]  # [N, clip_dim]
            for text, vector in zip(missing, encoded):
                self._store[text] = vector
        out = torch.stack([self._store[t] for t in texts])[None]
        self._touch(texts)
        return out

    def _touch(self, texts: Sequence[str]) -> None:
        """Mark ``texts`` most recently used, then drop the least recently used beyond capacity."""
        for text in texts:
            self._store.move_to_end(text)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)


class DualStreamMDM(nn.Module):
    """The student and the teacher of KineMIC on one network (paper Sec. 4).

    ``network`` is a peft model around a KineMICMDM whose base weights came from the pre-trained
    checkpoint. ``student`` runs it with adapters and the action embedding; ``teacher`` runs the
    same object with adapters disabled, text only, in eval mode (or train mode, the authors'
    choice), without gradient. Build one with ``DualStreamMDM.from_base``.

    Args:
        network: ``peft.PeftModel`` whose base model is a KineMICMDM.
        settings: the KineMIC model settings (num_actions, class names, inits, teacher mode).
        lora: the LoRA settings the network was built with.
        upstream_args: the base checkpoint's args.json (dict), kept for checkpoints.
        base: the upstream checkpoint the base weights came from, kept for checkpoints.
        text_cache_size: distinct texts whose CLIP features are kept.

    Attributes:
        student, teacher: Denoiser views (core/denoiser.py protocol).
        latent_dim: d, width of the features.
    """

    def __init__(
        self,
        network: nn.Module,
        settings: KineMICModelSettings,
        lora: LoraSettings,
        upstream_args: Mapping[str, Any] | None = None,
        base: BaseCheckpoint | None = None,
        text_cache_size: int = 4096,
    ) -> None:
        super().__init__()
        mdm = network.get_base_model()
        if mdm.num_actions != settings.num_actions:
            raise ValueError(
                f"DualStreamMDM: the network has {mdm.num_actions} action classes, settings say {settings.num_actions}"
            )
        self.network = network
        self.settings = settings
        self.lora = lora
        self.upstream_args = dict(upstream_args or {})
        self.base = base
        self.latent_dim = int(mdm.latent_dim)
        self.text_cache = TextEmbeddingCache(text_cache_size)
        self.student = StudentDenoiser(self)
        self.teacher = TeacherDenoiser(self)

    @classmethod
    def from_base(
        cls,
        mdm: nn.Module,
        settings: KineMICModelSettings,
        lora: LoraSettings,
        upstream_args: Mapping[str, Any] | None = None,
        base: BaseCheckpoint | None = None,
    ) -> DualStreamMDM:
        """Inject LoRA into a KineMICMDM whose base weights are loaded; unfreeze the action embedding.

        Args:
            mdm: KineMICMDM with the pre-trained weights loaded (before LoRA: peft renames keys).
            settings, lora, upstream_args, base: as for the constructor.

        Returns:
            The dual-stream model; trainable parameters are the adapters and the action embedding.
        """
        network = inject_lora(mdm, lora)
        mdm.action_embedding.weight.requires_grad_(True)
        return cls(network, settings, lora, upstream_args=upstream_args, base=base)

    @property
    def mdm(self) -> nn.Module:
        """The KineMICMDM inside the peft model (LoRA layers injected in place)."""
        return self.network.get_base_model()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's own parameters: LoRA adapters, then the action embedding (for the optimizer)."""
        named = dict(self.network.named_parameters())
        return [named[n] for n in lora_parameter_names(self.network)] + [self.mdm.action_embedding.weight]

    def added_parameter_names(self) -> list[str]:
        """Names (in ``self.named_parameters()``) of what KineMIC added to the plain MDM."""
        lora_names = [f"network.{n}" for n in lora_parameter_names(self.network)]
        action = [n for n, p in self.named_parameters() if p is self.mdm.action_embedding.weight]
        return lora_names + action

    def text_features(self, texts: Sequence[str]) -> Tensor:
        """CLIP features [1, B, 512] of ``texts`` through the cache."""
        return self.text_cache.encode(self.mdm, texts)

    def adapter_state_dict(self) -> dict[str, Any]:
        """What KineMIC trains: {'lora': peft's adapter state dict, 'action_embedding': [num_actions, d]}."""
        from peft import get_peft_model_state_dict

        lora_state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.network).items()}
        return {"lora": lora_state, "action_embedding": self.mdm.action_embedding.weight.detach().clone()}

    def load_adapter_state_dict(self, state: Mapping[str, Any], source: str = "the state dict") -> None:
        """Load what ``adapter_state_dict`` returned.

        Raises:
            ValueError: the action embedding's number of actions or width differs (naming ``source``),
                or the adapter keys do not match this network's LoRA layers.
        """
        from peft import set_peft_model_state_dict

        action = state["action_embedding"]
        expected = tuple(self.mdm.action_embedding.weight.shape)
        if tuple(action.shape) != expected:
            raise ValueError(
                f"{source} holds an action embedding for {action.shape[0]} actions of width {action.shape[-1]}, "
                f"but this model has {expected[0]} actions of width {expected[1]}: load it with the labels "
                "(classes) it was trained on, or train a new checkpoint for these classes"
            )
        ours = set(lora_parameter_names(self.network))
        result = set_peft_model_state_dict(self.network, dict(state["lora"]))
        unexpected = list(getattr(result, "unexpected_keys", []))
        missing = [k for k in getattr(result, "missing_keys", []) if k in ours]
        if unexpected or missing:
            raise ValueError(
                f"{source}: LoRA adapters do not fit this network (unexpected {unexpected[:3]}, missing "
                f"{missing[:3]}); its LoRA settings differ from the checkpoint's"
            )
        with torch.no_grad():
            self.mdm.action_embedding.weight.copy_(action)

    def sampler(self, scale: float = 2.5) -> nn.Module:
        """The student under dual-condition classifier-free guidance, for upstream's p_sample_loop."""
        from mdm_kinemic.mdm.model.guidance import DualConditionCFG

        return DualConditionCFG(self.network, scale=scale)

    def train(self, mode: bool = True) -> DualStreamMDM:
        """nn.Module.train; KineMICMDM's override keeps upstream's SMPL in step."""
        super().train(mode)
        return self

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> DualStreamMDM:
        # cached text features live on the old device
        self.text_cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def condition_to_y(self, cond: Condition, frame_mask: Tensor, with_action: bool) -> dict[str, Any]:
        """Upstream's y dict for a Condition (text through the cache, explicit drop masks)."""
        bs = frame_mask.shape[0]
        device = frame_mask.device
        y: dict[str, Any] = {"mask": frame_mask[:, None, None, :]}
        if cond.text is not None:
            if len(cond.text) != bs:
                raise ValueError(f"Condition has {len(cond.text)} texts for a batch of {bs}")
            y["text_embed"] = self.text_features(list(cond.text))
            drop_text = cond.drop_text
            y["drop_text"] = torch.zeros(bs, dtype=torch.bool, device=device) if drop_text is None else drop_text.to(device)
        if with_action and cond.action is not None:
            y["action"] = cond.action.to(device)
            drop_action = cond.drop_action
            y["drop_action"] = (
                torch.zeros(bs, dtype=torch.bool, device=device) if drop_action is None else drop_action.to(device)
            )
        return y


class _DenoiserView:
    """A view of one DualStreamMDM as one stream's Denoiser (core/denoiser.py)."""

    def __init__(self, owner: DualStreamMDM) -> None:
        self._owner = owner

    @property
    def latent_dim(self) -> int:
        return self._owner.latent_dim


class StudentDenoiser(_DenoiserView):
    """The student G^T as a core Denoiser: LoRA on, text + action condition, with gradient."""

    def denoise(self, x_t: Tensor, timesteps: Tensor, cond: Condition, frame_mask: Tensor) -> DenoiserOutput:
        """x0 prediction and final-block features of the student.

        Args:
            x_t: Tensor [B, F, 1, T], normalised motion at 20 fps.
            timesteps: LongTensor [B].
            cond: text (caption or class prompt) and action per sample, with their drop masks
                (None = keep); text None = null text for every sample, action None = no action.
            frame_mask: BoolTensor [B, T], True on valid frames.

        Returns:
            DenoiserOutput(x0 [B, F, 1, T], features [B, T, d]).
        """
        owner = self._owner
        y = owner.condition_to_y(cond, frame_mask, with_action=True)
        x0, features = owner.mdm.forward_with_features(x_t, timesteps, y)
        return DenoiserOutput(x0, features)


class TeacherDenoiser(_DenoiserView):
    """The teacher G^P as a core Denoiser: the same network, adapters disabled, text only, no gradient."""

    def denoise(self, x_t: Tensor, timesteps: Tensor, cond: Condition, frame_mask: Tensor) -> DenoiserOutput:
        """x0 prediction and final-block features of the frozen pre-trained MDM.

        Args:
            x_t: Tensor [B, F, 1, T], normalised motion at 20 fps (the prior stream x_t^P).
            timesteps: LongTensor [B].
            cond: the source captions (text) with an optional drop_text; cond.action must be None.
            frame_mask: BoolTensor [B, T].

        Returns:
            DenoiserOutput(x0 [B, F, 1, T], features [B, T, d]), detached.

        Raises:
            ValueError: cond.action is given (the teacher has no action embedding).
        """
        if cond.action is not None:
            raise ValueError(
                "the teacher is the text-only pre-trained MDM: pass Condition(text=source captions, action=None)"
            )
        owner = self._owner
        y = owner.condition_to_y(cond, frame_mask, with_action=False)
        with torch.no_grad(), teacher_context(owner):
            x0, features = owner.mdm.forward_with_features(x_t, timesteps, y)
        return DenoiserOutput(x0, features)


@contextmanager
def teacher_context(model: DualStreamMDM) -> Iterator[None]:
    """Adapters disabled and the module mode the settings ask for, restored on exit."""
    mdm = model.mdm
    was_training = mdm.training
    mdm.train(model.settings.teacher_mode == "train")
    try:
        with model.network.disable_adapter():
            yield
    finally:
        mdm.train(was_training)
