"""MDM conditioned on a sentence encoder (all-MiniLM-L6-v2, 384-dim) instead of CLIP ViT-B/32.

Where CLIP's weights cannot be had, a teacher MDM can still be trained from scratch with the
sentence encoder behind upstream's own text interface. The seam in upstream (model/mdm.py,
pinned d4fd88c) is small:

- ``MDM.__init__`` builds ``self.clip_model = self.load_and_freeze_clip(clip_version)``, sets
  ``self.encode_text = self.clip_encode_text`` and ``self.embed_text = nn.Linear(self.clip_dim,
  latent_dim)``; ``clip_dim`` is a constructor argument (default 512) that
  ``utils.model_util.get_model_args`` never sets.
- ``forward`` only calls ``self.encode_text(y['text'])`` and expects [1, B, clip_dim].

``with_sentence_text(MDM)`` (``SentenceTextMDM``; any MDM subclass such as KineMICMDM works the
same way) overrides ``load_and_freeze_clip`` and ``clip_encode_text`` (same signatures) and
passes ``clip_dim`` = the encoder's width, with upstream's CLIP branch
(``text_encoder_type='clip'`` internally, so trans_dec keeps its CLIP memory path). The encoder
holds no parameters of the model: ``state_dict`` has no ``clip_model.*`` keys, which upstream's
TrainLoop drops and ``load_model_wo_clip`` allows to be missing anyway.

:func:`install_sentence_text` lets upstream's unmodified scripts build it: upstream's
``--text_encoder_type`` (choices clip, bert) gains the choice ``minilm``; the value goes to
args.json (model group), so sample/eval scripts reading args.json build the same model.
``python -m mdm_kinemic.run SCRIPT ...`` installs it before every script.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["SENTENCE_ENCODERS", "FrozenSentenceEncoder", "install_sentence_text", "sentence_text_mdm_class"]

#: --text_encoder_type values served here -> mdm_kinemic.text encoder names
SENTENCE_ENCODERS = {"minilm": "minilm"}


class FrozenSentenceEncoder(nn.Module):
    """A frozen mdm_kinemic.text encoder as an nn.Module without parameters.

    The wrapped encoder is kept out of the module tree on purpose: its weights must not enter
    MDM's state_dict (upstream saves ``state_dict`` minus ``clip_model.*``), its optimizer or
    its EMA, and ``MDM.train()`` must not switch its dropout on (sentence-transformers' encode
    runs the model in eval mode itself). Embeddings are memoised per text: captions repeat
    every epoch, and a frozen encoder gives the same vector each time.

    Args:
        name: an mdm_kinemic.text encoder name (``get_text_encoder``), e.g. "minilm".
    """

    def __init__(self, name: str = "minilm") -> None:
        super().__init__()
        from mdm_kinemic.text.encoder import get_text_encoder

        encoder = get_text_encoder(name)
        encoder.show_progress = False
        self.__dict__["encoder"] = encoder
        self.__dict__["memo"] = {}
        self.name = name

    @property
    def dim(self) -> int:
        """D, the embedding width (384 for all-MiniLM-L6-v2)."""
        return self.encoder.dim

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> Tensor:
        """Embed texts: Tensor [N, D] float32 on the CPU, each row L2-normalised (TextEncoder.encode)."""
        new = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if new:
            self.memo.update(zip(new, self.encoder.encode(new)))
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self.memo[t] for t in texts])


_CLASSES: dict[type, type] = {}


def with_sentence_text(base: type) -> type:
    """A subclass of ``base`` (upstream's MDM or a subclass of it, e.g. KineMICMDM) conditioned on
    a sentence encoder: overrides ``load_and_freeze_clip`` and ``clip_encode_text``; built once
    per base.

    Its constructor takes ``base``'s arguments; ``text_encoder_type`` names the sentence encoder
    ("minilm", the default), ``clip_dim`` is set to the encoder's width (384) and ``base`` sees
    ``text_encoder_type='clip'`` (upstream's CLIP branch, whose checks KineMICMDM also makes).
    It raises ValueError for a ``text_encoder_type`` outside SENTENCE_ENCODERS.
    """
    if base in _CLASSES:
        return _CLASSES[base]
    if base in _CLASSES.values():
        return base

    class SentenceText(base):
        def __init__(self, *args: Any, **kargs: Any) -> None:
            name = kargs.pop("text_encoder_type", "minilm")
            if name not in SENTENCE_ENCODERS:
                raise ValueError(
                    f"{type(self).__name__}: text_encoder_type must be one of {sorted(SENTENCE_ENCODERS)}, got {name!r}"
                )
            encoder = FrozenSentenceEncoder(SENTENCE_ENCODERS[name])
            # load_and_freeze_clip runs inside MDM.__init__, before any attribute of ours exists
            self.__dict__["_pending_text_encoder"] = encoder
            super().__init__(*args, **{**kargs, "text_encoder_type": "clip", "clip_dim": encoder.dim})
            self.text_encoder_name = name

        def load_and_freeze_clip(self, clip_version: str) -> nn.Module:
            """Overrides MDM.load_and_freeze_clip: returns the frozen sentence encoder (clip_version unused)."""
            return self.__dict__.pop("_pending_text_encoder")

        def clip_encode_text(self, raw_text: Sequence[str]) -> Tensor:
            """Overrides MDM.clip_encode_text: Tensor [1, B, D] on the model's device, as upstream's."""
            device = next(self.parameters()).device
            return self.clip_model(list(raw_text)).to(device).unsqueeze(0)

    name = "SentenceTextMDM" if base.__name__ == "MDM" else f"SentenceText{base.__name__}"
    SentenceText.__name__ = SentenceText.__qualname__ = name
    SentenceText.__module__ = __name__
    SentenceText.__doc__ = f"{base.__name__} whose text condition comes from a sentence encoder (mdm/model/sentence_text.py)."
    _CLASSES[base] = SentenceText
    return SentenceText


def sentence_text_mdm_class() -> type:
    """``SentenceTextMDM``: upstream's MDM with the sentence encoder (:func:`with_sentence_text`)."""
    from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_state

    if upstream_state() is None:
        import_upstream()
    from model.mdm import MDM

    return with_sentence_text(MDM)


def model_class_for(args: argparse.Namespace, model_cls: type | None = None) -> type | None:
    """The class to build for a checkpoint's args: ``model_cls`` (None = upstream's MDM) wrapped
    by :func:`with_sentence_text` when ``args.text_encoder_type`` is a sentence encoder
    ("minilm"), else ``model_cls`` unchanged (None stays None).

    Meant for mdm/model/build.py ``build_upstream_model``, through which every checkpoint of this
    project is built (teacher, KineMIC student, synth, export).
    """
    if getattr(args, "text_encoder_type", "clip") not in SENTENCE_ENCODERS:
        return model_cls
    return sentence_text_mdm_class() if model_cls is None else with_sentence_text(model_cls)


def __getattr__(name: str):
    if name == "SentenceTextMDM":
        return sentence_text_mdm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install_sentence_text() -> None:
    """Make upstream's scripts accept ``--text_encoder_type minilm`` (idempotent).

    Wraps ``utils.parser_util.add_model_options`` (adds the choice) and
    ``utils.model_util.create_model_and_diffusion`` (builds SentenceTextMDM for it, upstream's
    function otherwise). Upstream must be importable (``import_upstream``).
    """
    from utils import model_util, parser_util

    if getattr(model_util.create_model_and_diffusion, "_sentence_text", False):
        return
    add_model_options = parser_util.add_model_options
    create = model_util.create_model_and_diffusion

    @functools.wraps(add_model_options)
    def add_model_options_with_sentence(parser):
        add_model_options(parser)
        for action in parser._actions:
            if action.dest == "text_encoder_type" and action.choices is not None:
                action.choices = [*action.choices, *(c for c in SENTENCE_ENCODERS if c not in action.choices)]
                action.help = f"{action.help} (minilm: all-MiniLM-L6-v2, mdm_kinemic.mdm.model.sentence_text)"

    @functools.wraps(create)
    def create_model_and_diffusion(args, data):
        if getattr(args, "text_encoder_type", "clip") not in SENTENCE_ENCODERS:
            return create(args, data)
        model = sentence_text_mdm_class()(**model_util.get_model_args(args, data))
        return model, model_util.create_gaussian_diffusion(args)

    create_model_and_diffusion._sentence_text = True
    parser_util.add_model_options = add_model_options_with_sentence
    model_util.create_model_and_diffusion = create_model_and_diffusion
