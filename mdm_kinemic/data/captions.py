"""The caption corpus of a HumanML3D-layout dataset, as soft positive mining reads it (Sec. 4.1).

Every caption line of every clip becomes a :class:`~mdm_kinemic.core.mining.Caption`
(clip id, text, start frame, end frame at 20 fps; 0, 0 = the whole clip). Sub-spans are checked
against the clip: a span reaching past the clip's end is cut at the end, and one that is empty
after that (or starts past the end) is left out; both are counted in a logged warning, as are
listed clips without motion files, so that nothing disappears silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from mdm_kinemic.core.mining import Caption
from mdm_kinemic.data.humanml3d import HumanML3D

log = logging.getLogger(__name__)


def caption_corpus(
    dataset: HumanML3D | str | Path, split: str | None = None, ids: Iterable[str] | None = None
) -> list[Caption]:
    """All captions of a dataset (or of a split / given clips), in clip order then file order.

    Args:
        dataset: a :class:`HumanML3D` or its folder.
        split: a split list name ("train", "all", ...); ignored when ``ids`` is given.
        ids: explicit clip ids.

    Returns:
        One Caption per caption line; end_frame is exclusive, in 20-fps frames.

    Raises:
        FileNotFoundError: the dataset or split list does not exist.
        ValueError: a malformed texts line (the message names the file).
    """
    data = dataset if isinstance(dataset, HumanML3D) else HumanML3D(dataset)
    clip_ids = list(ids) if ids is not None else (data.split(split) if split is not None else data.ids)
    corpus: list[Caption] = []
    absent = clipped = dropped = 0
    for clip_id in clip_ids:
        if clip_id not in data:
            absent += 1
            continue
        captions = data.captions(clip_id)
        length = None
        for cap in captions:
            if cap.start_frame == 0 and cap.end_frame == 0:
                corpus.append(cap)
                continue
            if length is None:
                length = data.length(clip_id)
            end = min(cap.end_frame, length)
            if cap.start_frame >= end:
                dropped += 1
                continue
            if end != cap.end_frame:
                clipped += 1
                cap = cap._replace(end_frame=end)
            corpus.append(cap)
    if absent:
        log.warning("%s: %d listed clips have no motion file; their captions are left out", data.root, absent)
    if clipped or dropped:
        log.warning(
            "%s: %d caption spans cut at the clip's end, %d empty spans left out", data.root, clipped, dropped
        )
    return corpus
