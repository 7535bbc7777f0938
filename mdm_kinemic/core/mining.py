"""Soft positive mining (Sec. 4.1 of the paper): the source captions closest to each target class.

Each target class label becomes one or more text prompts ("a person performs a side kick."); the
prompts and every caption of the source corpus (HumanML3D) are embedded by a text encoder and
compared by cosine similarity; the top-k captions per class (k = 250) are that class's soft
positives. A caption points to a source clip and, where it has one, to its #start#end sub-span,
so a soft positive is a (clip, span) the batch sampler can draw as the prior of a target.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from mdm_kinemic.atomic import atomic_write_text

if TYPE_CHECKING:
    from mdm_kinemic.text.encoder import TextEncoder

DEFAULT_PROMPT_TEMPLATE = "a person performs a {label}."
PROMPT_SOURCES = ("template", "ntu")
MINING_UNITS = ("caption", "clip_mean")


class Caption(NamedTuple):
    """One caption of a source clip.

    Attributes:
        clip_id: the clip's id in its dataset (HumanML3D "000021", or "M000021" for mirrors).
        text: the caption.
        start_frame, end_frame: the sub-span the caption describes, in frames at 20 fps,
            end exclusive; start_frame = end_frame = 0 means the whole clip.
    """

    clip_id: str
    text: str
    start_frame: int = 0
    end_frame: int = 0

    @property
    def whole_clip(self) -> bool:
        """True when the caption describes the whole clip rather than a sub-span."""
        return self.start_frame == 0 and self.end_frame == 0


class MinedPositive(NamedTuple):
    """A soft positive: a caption and its cosine similarity to the class prompt(s), in [-1, 1]."""

    caption: Caption
    score: float


@dataclass
class MiningSettings:
    """How class labels become prompts and how many soft positives each class keeps."""

    top_k: int = field(default=250, metadata={"help": "soft positives kept per class (paper Sec. 4.1: k = 250)"})
    prompt_source: str = field(
        default="template",
        metadata={
            "choices": PROMPT_SOURCES,
            "help": ("class prompts: 'template' formats --templates with the class name (paper Sec. 4.1); 'ntu' "
                     "takes the captions of --ntu_metadata (the authors' ntu_metadata.json)")
        },
    )
    templates: tuple[str, ...] = field(
        default=(DEFAULT_PROMPT_TEMPLATE,),
        metadata={"help": ("prompt templates with a {label} placeholder, averaged when several (paper: 'a person "
                           "performs a {label}.')")},
    )
    ntu_metadata: Optional[str] = field(
        default=None,
        metadata={
            "help": "NTU-style metadata JSON with captions per action (for --prompt_source ntu)"
        },
    )
    unit: str = field(
        default="caption",
        metadata={
            "choices": MINING_UNITS,
            "help": ("mining unit: 'caption' ranks every caption with its #start#end sub-span (ours); 'clip_mean' "
                     "ranks clips by their mean caption embedding (the authors' code)")
        },
    )

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"MiningSettings.top_k must be an integer >= 1, got {self.top_k!r}")
        if self.prompt_source not in PROMPT_SOURCES:
            raise ValueError(
                f"MiningSettings.prompt_source must be one of {PROMPT_SOURCES}, got {self.prompt_source!r}"
            )
        if self.unit not in MINING_UNITS:
            raise ValueError(f"MiningSettings.unit must be one of {MINING_UNITS}, got {self.unit!r}")
        if isinstance(self.templates, str):
            self.templates = (self.templates,)
        self.templates = tuple(self.templates)
        if not self.templates:
            raise ValueError("MiningSettings.templates must hold at least one template")
        for template in self.templates:
            if "{label}" not in template:
                raise ValueError(
                    f"MiningSettings.templates: {template!r} has no {{label}} placeholder, "
                    f"e.g. {DEFAULT_PROMPT_TEMPLATE!r}"
                )
            try:
                template.format(label="x")
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(
                    f"MiningSettings.templates: {template!r} is not a valid format string with only "
                    f"{{label}} ({error}); double other braces as {{{{ }}}}"
                ) from error
        if self.prompt_source == "ntu":
            if self.ntu_metadata is None:
                raise ValueError(
                    "MiningSettings.ntu_metadata is required when prompt_source is 'ntu': "
                    "pass the path of ntu_metadata.json (train_fewshot: --ntu_metadata FILE)"
                )
            if self.templates != (DEFAULT_PROMPT_TEMPLATE,):
                warnings.warn("MiningSettings.templates is ignored when prompt_source is 'ntu'", stacklevel=3)
        elif self.ntu_metadata is not None:
            warnings.warn("MiningSettings.ntu_metadata is ignored unless prompt_source is 'ntu'", stacklevel=3)


def load_ntu_captions(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """Caption templates per action from an NTU-style metadata JSON.

    Args:
        path: a JSON file ``{"actions": [{"action": "side kick", "tag": "A102",
            "captions": ["A person does a side kick."]}, ...]}`` (the authors' ntu_metadata.json).

    Returns:
        A mapping from both the lower-cased action name and the tag (e.g. "a102") to its captions.

    Raises:
        FileNotFoundError, ValueError: a missing file, or one not in that format (the message
            names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NTU caption metadata {path} not found: pass the path of an existing "
                                "ntu_metadata.json (train_fewshot: --ntu_metadata FILE)")
    try:
        actions = json.loads(path.read_text(encoding="utf-8"))["actions"]
        table: dict[str, tuple[str, ...]] = {}
        for entry in actions:
            captions = tuple(str(c) for c in entry["captions"])
            if not captions:
                raise ValueError(f"action {entry['action']!r} has no captions")
            table[str(entry["action"]).strip().lower()] = captions
            if "tag" in entry:
                table[str(entry["tag"]).strip().lower()] = captions
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path} is not an NTU caption metadata file ({error}); expected "
            '{"actions": [{"action": ..., "tag": ..., "captions": [...]}]}'
        ) from error
    return table


def class_prompts(class_names: Sequence[str], settings: MiningSettings) -> list[tuple[str, ...]]:
    """The text prompt(s) of each class.

    Args:
        class_names: C labels, e.g. ["run on the spot", "side kick", "stretch oneself"].
        settings: the prompt source and templates.

    Returns:
        C tuples of prompts, e.g. ("a person performs a side kick.",).

    Raises:
        ValueError: with prompt_source 'ntu', a label that the metadata file does not list.
    """
    if settings.prompt_source == "template":
        return [tuple(t.format(label=name) for t in settings.templates) for name in class_names]
    table = load_ntu_captions(settings.ntu_metadata)
    prompts = []
    for name in class_names:
        key = name.strip().lower()
        if key not in table:
            raise ValueError(
                f"class {name!r} is not listed in {settings.ntu_metadata}: add an entry "
                f'{{"action": "{name}", "captions": [...]}} or use prompt_source "template"'
            )
        prompts.append(table[key])
    return prompts


@dataclass
class MiningResult:
    """Soft positives per class, best first, with what produced them.

    Attributes:
        class_names: C labels.
        prompts: the prompts of each class.
        positives: C lists of :class:`MinedPositive`, sorted by decreasing score.
        encoder_identity: the text encoder's identity.
        top_k: the requested k (a class keeps fewer when the corpus is smaller).
        unit: 'caption' or 'clip_mean'.
        corpus_size: captions in the source corpus.
    """

    class_names: list[str]
    prompts: list[tuple[str, ...]]
    positives: list[list[MinedPositive]]
    encoder_identity: str
    top_k: int
    unit: str
    corpus_size: int

    def captions(self, class_index: int) -> list[Caption]:
        """The soft positive captions of class ``class_index``, best first."""
        return [p.caption for p in self.positives[class_index]]

    def to_dict(self) -> dict:
        """The mining report as JSON-serialisable data (see :meth:`write_json`)."""
        classes = []
        for index, (name, prompts, positives) in enumerate(zip(self.class_names, self.prompts, self.positives)):
            scores = [p.score for p in positives]
            classes.append(
                {
                    "index": index,
                    "name": name,
                    "prompts": list(prompts),
                    "kept": len(positives),
                    "clips": len({p.caption.clip_id for p in positives}),
                    "score_max": max(scores, default=math.nan),
                    "score_min": min(scores, default=math.nan),
                    "score_mean": sum(scores) / len(scores) if scores else math.nan,
                    "positives": [
                        {"rank": rank, "score": p.score, **p.caption._asdict()}
                        for rank, p in enumerate(positives, start=1)
                    ],
                }
            )
        return {
            "encoder": self.encoder_identity,
            "top_k": self.top_k,
            "unit": self.unit,
            "corpus_size": self.corpus_size,
            "classes": classes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "MiningResult":
        """Inverse of :meth:`to_dict`."""
        fields = ("clip_id", "text", "start_frame", "end_frame")
        return cls(
            class_names=[c["name"] for c in data["classes"]],
            prompts=[tuple(c["prompts"]) for c in data["classes"]],
            positives=[
                [MinedPositive(Caption(*(p[f] for f in fields)), float(p["score"])) for p in c["positives"]]
                for c in data["classes"]
            ],
            encoder_identity=data["encoder"],
            top_k=int(data["top_k"]),
            unit=data["unit"],
            corpus_size=int(data["corpus_size"]),
        )

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write the report (per class: prompts, score range, every positive) atomically."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> "MiningResult":
        """Read a report written by :meth:`write_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def table(self, rows: int = 10, width: int = 72) -> str:
        """A readable report: per class, the prompts, score range and the ``rows`` best captions."""
        lines = [f"soft positive mining: {self.encoder_identity}, top-{self.top_k} of {self.corpus_size} captions"]
        for entry in self.to_dict()["classes"]:
            lines.append("")
            lines.append(
                f"[{entry['index']}] {entry['name']}: kept {entry['kept']} captions from {entry['clips']} clips, "
                f"cosine {entry['score_min']:.3f}..{entry['score_max']:.3f} (mean {entry['score_mean']:.3f})"
            )
            lines.append("    prompts: " + " | ".join(entry["prompts"]))
            shown = entry["positives"][:rows]
            # HumanML3D ids are 6 characters, converted corpora's up to ~40: size the column to them
            clip_width = max([12, *(len(p["clip_id"]) for p in shown)])
            lines.append(f"    {'rank':>4}  {'score':>6}  {'clip':<{clip_width}} {'frames':<11} caption")
            for p in shown:
                span = "all" if p["start_frame"] == p["end_frame"] == 0 else f"{p['start_frame']}-{p['end_frame']}"
                text = p["text"] if len(p["text"]) <= width else p["text"][: width - 3] + "..."
                lines.append(f"    {p['rank']:>4}  {p['score']:6.3f}  {p['clip_id']:<{clip_width}} {span:<11} {text}")
        return "\n".join(lines)


def mine_soft_positives(
    class_names: Sequence[str],
    corpus: Sequence[Caption],
    encoder: "TextEncoder",
    settings: Optional[MiningSettings] = None,
) -> MiningResult:
    """Top-k source captions per target class by cosine similarity of text embeddings (Sec. 4.1).

    Prompts of one class are averaged (then re-normalised) into one class embedding. Identical
    caption texts are embedded once. Equal scores keep corpus order.

    Args:
        class_names: C target labels.
        corpus: N source captions (e.g. every caption of HumanML3D's train split).
        encoder: a :class:`~mdm_kinemic.text.encoder.TextEncoder` (wrap it in
            :class:`~mdm_kinemic.text.cache.CachedTextEncoder` to reuse corpus embeddings).
        settings: k, prompts and mining unit; defaults to :class:`MiningSettings()`.

    Returns:
        A :class:`MiningResult` with min(k, items) positives per class.

    Raises:
        ValueError: no classes or an empty corpus.

    Warns:
        UserWarning: when k exceeds the number of rankable items (every item is kept).
    """
    settings = settings or MiningSettings()
    if not class_names:
        raise ValueError("mine_soft_positives needs at least one class name")
    if not corpus:
        raise ValueError("mine_soft_positives got an empty caption corpus: check the source dataset path")
    corpus = [c if type(c) is Caption else Caption(*c) for c in corpus]
    prompts = class_prompts(class_names, settings)

    flat_prompts = [p for group in prompts for p in group]
    prompt_embeddings = encoder.encode(flat_prompts)
    owner = torch.cat([torch.full((len(g),), i) for i, g in enumerate(prompts)])
    class_embeddings = torch.zeros(len(prompts), prompt_embeddings.shape[1]).index_add_(0, owner, prompt_embeddings)
    class_embeddings = F.normalize(class_embeddings, dim=-1)

    text_index: dict[str, int] = {}
    caption_to_text = torch.tensor([text_index.setdefault(c.text, len(text_index)) for c in corpus])
    text_embeddings = encoder.encode(list(text_index))

    if settings.unit == "caption":
        items = corpus
        scores = (class_embeddings @ text_embeddings.T)[:, caption_to_text]
    else:
        groups: dict[tuple[str, int, int], int] = {}
        items = []
        for caption in corpus:
            key = (caption.clip_id, caption.start_frame, caption.end_frame)
            if key not in groups:
                groups[key] = len(items)
                items.append(caption)
        caption_to_item = torch.tensor([groups[(c.clip_id, c.start_frame, c.end_frame)] for c in corpus])
        item_embeddings = torch.zeros(len(items), text_embeddings.shape[1]).index_add_(
            0, caption_to_item, text_embeddings[caption_to_text]
        )
        scores = class_embeddings @ F.normalize(item_embeddings, dim=-1).T

    k = settings.top_k
    if k > len(items):
        warnings.warn(
            f"top_k={k} exceeds the {len(items)} rankable {settings.unit} items of the corpus: keeping all of them",
            stacklevel=2,
        )
        k = len(items)
    # A stable sort (not topk) so that equal scores keep corpus order on every device.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    top_scores = scores.gather(1, order)
    positives = [
        [MinedPositive(items[i], float(s)) for i, s in zip(row.tolist(), row_scores.tolist())]
        for row, row_scores in zip(order, top_scores)
    ]
    return MiningResult(
        class_names=list(class_names),
        prompts=prompts,
        positives=positives,
        encoder_identity=encoder.identity,
        top_k=settings.top_k,
        unit=settings.unit,
        corpus_size=len(corpus),
    )
