"""Class labels and captions of converted clips, from their file names.

Label sources:

- ``bandai``: Bandai Namco Research Motion Dataset names ``dataset-N_{content}_{style}_{id}``;
  the class is the content ("walk-turn-left"), the caption says content and style ("a person
  runs in an exhausted way"); the same content in datasets 1 and 2 is one class;
- ``ntu``: NTU RGB+D names ``SsssCcccPpppRrrrAaaa``; class A - 1 of the 120 NTU actions;
- ``parent_dir``: the name of the folder holding the file;
- ``none``: no labels, no captions.

A caption template is a Python format string over the fields {label} (the class name, hyphens
as spaces), {action} (a verb phrase: "waves the left hand"), {style} and {style_phrase}
(" in an exhausted way", empty for normal); Bandai clips default to
"a person {action}{style_phrase}.", the others to "a person performs {label}.".
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import NamedTuple

from mdm_kinemic.data.labels import NTU_NAME

LABEL_SOURCES = ("auto", "bandai", "ntu", "parent_dir", "none")
BANDAI_NAME = re.compile(r"^dataset-(\d+)_([a-z-]+)_([a-z-]+)_(\d+)$")
TEMPLATE_FIELDS = ("label", "action", "style", "style_phrase")
DEFAULT_TEMPLATES = {"bandai": "a person {action}{style_phrase}.", "other": "a person performs {label}."}

#: Verb phrase (third person) per Bandai content; unknown contents read as their name.
BANDAI_ACTIONS = {
    "walk": "walks", "run": "runs", "dash": "dashes", "walk-back": "walks backwards",
    "walk-left": "walks to the left", "walk-right": "walks to the right", "bow": "bows",
    "bye": "waves goodbye", "byebye": "waves goodbye with both hands",
    "guide": "guides someone the way with a hand gesture", "respond": "responds to someone",
    "call": "calls someone over", "punch": "punches", "kick": "kicks", "slash": "slashes with a sword",
    "dance-long": "dances", "dance-short": "dances", "walk-turn-left": "walks and turns left",
    "walk-turn-right": "walks and turns right", "wave-both-hands": "waves both hands",
    "wave-left-hand": "waves the left hand", "wave-right-hand": "waves the right hand",
    "raise-up-both-hands": "raises both hands", "raise-up-left-hand": "raises the left hand",
    "raise-up-right-hand": "raises the right hand",
}

#: Manner phrase per Bandai style; unknown styles read "in a <style> way".
BANDAI_STYLES = {
    "normal": "", "happy": " in a happy way", "sad": " in a sad way", "angry": " in an angry way",
    "proud": " in a proud way", "not-confident": " in an unconfident way",
    "masculinity": " in a masculine way", "masculine": " in a masculine way",
    "feminine": " in a feminine way", "childish": " in a childish way", "old": " like an old person",
    "elderly": " like an elderly person", "tired": " in a tired way", "exhausted": " in an exhausted way",
    "active": " in an active way", "youthful": " in a youthful way", "musical": " in a musical way",
    "giant": " like a giant", "chimpira": " like a thug",
}


class ClipLabel(NamedTuple):
    """Label and caption fields of one file.

    Attributes:
        label: class name ("" when unlabelled).
        fields: values of the template fields.
    """

    label: str
    fields: dict[str, str]


def check_template(template: str) -> None:
    """Raise ValueError if a caption template uses fields other than TEMPLATE_FIELDS."""
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(f"caption template {template!r} is not a valid format string ({err})") from err
    unknown = used - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"caption template {template!r} uses unknown fields {sorted(unknown)}; accepted: {TEMPLATE_FIELDS}")


def detect_label_source(paths: list[Path]) -> str:
    """"bandai" or "ntu" when every file name follows that dataset's pattern, else "parent_dir"."""
    stems = [p.stem for p in paths]
    if stems and all(BANDAI_NAME.match(s) for s in stems):
        return "bandai"
    if stems and all(NTU_NAME.match(s) for s in stems):
        return "ntu"
    return "parent_dir"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def clip_label(path: Path, source: str, ntu_names: list[str] | None = None) -> ClipLabel:
    """Label and caption fields of a file under a label source (not "auto").

    Raises:
        ValueError: a file name that does not follow the source's pattern.
    """
    stem = path.stem
    if source == "bandai":
        m = BANDAI_NAME.match(stem)
        if m is None:
            raise ValueError(f"{path.name}: not a Bandai Namco name dataset-N_{{content}}_{{style}}_{{id}}")
        content, style = m.group(2), m.group(3)
        phrase = BANDAI_STYLES.get(style, f" in {_article(style)} {style.replace('-', ' ')} way")
        action = BANDAI_ACTIONS.get(content, content.replace("-", " "))
        return ClipLabel(content, {"label": content.replace("-", " "), "action": action, "style": style, "style_phrase": phrase})
    if source == "ntu":
        m = NTU_NAME.match(stem)
        if m is None:
            raise ValueError(f"{path.name}: not an NTU name SsssCcccPpppRrrrAaaa")
        index = int(m.group(5)) - 1
        name = ntu_names[index] if ntu_names and index < len(ntu_names) else f"A{index + 1:03d}"
        return ClipLabel(name, {"label": name, "action": f"performs {name}", "style": "", "style_phrase": ""})
    if source == "parent_dir":
        name = path.parent.name
        return ClipLabel(name, {"label": name.replace("-", " ").replace("_", " "), "action": f"performs {name}", "style": "", "style_phrase": ""})
    if source == "none":
        return ClipLabel("", {})
    raise ValueError(f"label source must be one of {LABEL_SOURCES[1:]}, got {source!r}")
