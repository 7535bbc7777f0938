"""Convert motion files into a HumanML3D-layout dataset of 263-dim features at 20 fps.

Usage::

    python -m mdm_kinemic.data.convert --format bvh|smpl|ntu-skeleton|joints INPUT... --out DIR
        [--caption_template "a person {action}{style_phrase}."] [--labels auto|bandai|ntu|parent_dir|none]

INPUT is files or folders (searched recursively for the format's suffixes). DIR receives
new_joint_vecs/, new_joints/, texts/, all.txt, labels.txt + classes.txt (when labelled),
Mean.npy/Std.npy of the converted features, and convert_report.json listing every skipped file
with its reason (also printed). A file that cannot be converted is skipped, never silently: the
others are still written, and the command exits with status 2 unless ``--allow_partial``.

``--overwrite`` replaces an earlier conversion in DIR: every file convert wrote there is removed
before the new clips are written, so no earlier clip stays behind outside the lists and Mean/Std
(where caption corpora would still read it). DIR must hold nothing else (a splits/ folder drawn
from the earlier clips, say): convert refuses, naming those entries, rather than delete files it
did not write or leave them naming clips that changed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mdm_kinemic.atomic import atomic_write_text
from mdm_kinemic.data.hml_vec import (
    HmlVecSettings,
    joints_to_hml_vec,
    recover_from_ric,
)
from mdm_kinemic.data.humanml3d import (
    JOINTS_DIR,
    MOTION_DIR,
    TEXT_DIR,
    HumanML3D,
    mean_std,
    mirror_caption,
    mirror_id,
    write_clip,
    write_mean_std,
    write_split,
)
from mdm_kinemic.data.labelling import (
    DEFAULT_TEMPLATES,
    LABEL_SOURCES,
    check_template,
    clip_label,
    detect_label_source,
)
from mdm_kinemic.data.labels import CLASSES_FILE, LABELS_FILE, ntu_label, write_labels
from mdm_kinemic.data.reader_base import ReaderSettings
from mdm_kinemic.data.readers import get_reader, reader_names
from mdm_kinemic.data.resample import HML_FPS, resample
from mdm_kinemic.data.skeleton import swap_left_right
from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args

REPORT_FILE = "convert_report.json"
_WRITTEN_DIRS = {MOTION_DIR: ".npy", JOINTS_DIR: ".npy", TEXT_DIR: ".txt"}  # folder -> suffix of its files
_WRITTEN_FILES = ("all.txt", LABELS_FILE, CLASSES_FILE, "Mean.npy", "Std.npy", REPORT_FILE)


def _written_by_convert(name: str, names: Sequence[str]) -> bool:
    # a name convert writes, or the temporary file of an interrupted atomic write of one (".NAME.xxx")
    return name in names or any(name.startswith(f".{n}.") for n in names)


def earlier_outputs(out: Path) -> tuple[list[Path], list[str]]:
    """What an earlier conversion left in ``out``, and what else is there.

    Returns:
        (files convert writes: clips in new_joint_vecs/, new_joints/, texts/ and the lists,
        labels, Mean/Std and report at the top; the names of every other entry, relative to
        ``out``, sorted). Both empty for a missing folder.
    """
    written: list[Path] = []
    other: list[str] = []
    if not out.is_dir():
        return written, other
    for entry in sorted(out.iterdir()):
        if entry.name in _WRITTEN_DIRS and entry.is_dir():
            suffix = _WRITTEN_DIRS[entry.name]
            for item in sorted(entry.iterdir()):
                if item.is_file() and item.suffix == suffix:
                    written.append(item)
                else:
                    other.append(f"{entry.name}/{item.name}")
        elif entry.is_file() and _written_by_convert(entry.name, _WRITTEN_FILES):
            written.append(entry)
        else:
            other.append(entry.name + ("/" if entry.is_dir() else ""))
    return written, other


@dataclass(frozen=True)
class ConvertSettings:
    """What the converter does beyond reading and feature extraction.

    Attributes:
        format: reader name ("bvh", "smpl", "ntu-skeleton", "joints").
        caption_template: format string over {label} {action} {style} {style_phrase}; None =
            the label source's default.
        labels: label source: auto, bandai, ntu, parent_dir, none.
        class_names: file with one class name per line for NTU labels (line i = class i).
        mirror: also write each clip mirrored left/right under the id M<id> (HumanML3D's
            augmentation), with left/right swapped in its caption and label.
        workers: processes converting in parallel.
        overwrite: replace an earlier conversion in the output folder (its files are removed
            first; the folder must hold nothing convert did not write).
    """

    format: str = field(metadata={"choices": tuple(reader_names()), "help": "input format"})
    caption_template: str | None = field(default=None, metadata={
        "help": "caption format string over {label} {action} {style} {style_phrase} (default: 'a person {action}{style_phrase}.' for Bandai names, else 'a person performs {label}.')"})
    labels: str = field(default="auto", metadata={"choices": LABEL_SOURCES, "help": 'where class labels come from'})
    class_names: str | None = field(default=None, metadata={
        "help": 'class names file for NTU labels (e.g. ntu_classes.txt)'})
    mirror: bool = field(default=False, metadata={"help": 'also write left/right mirrored copies as M<id>'})
    workers: int = field(default=1, metadata={"help": 'parallel processes'})
    overwrite: bool = field(default=False, metadata={
        "help": 'replace an earlier conversion in --out (its files are removed first; --out must hold nothing else)'})

    def __post_init__(self) -> None:
        if self.format not in reader_names():
            raise ValueError(f"ConvertSettings.format must be one of {reader_names()}, got {self.format!r}")
        if self.labels not in LABEL_SOURCES:
            raise ValueError(f"ConvertSettings.labels must be one of {LABEL_SOURCES}, got {self.labels!r}")
        if self.caption_template is not None:
            check_template(self.caption_template)
        if self.workers < 1:
            raise ValueError(f"ConvertSettings.workers must be >= 1, got {self.workers}")


def collect_inputs(inputs: Sequence[str | Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files given, plus files with one of ``suffixes`` found recursively in given folders (sorted).

    Raises:
        FileNotFoundError: an input that does not exist.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {path} does not exist")
    return files


@dataclass(frozen=True)
class _Job:
    path: Path
    clip_id: str
    captions: tuple[str, ...]
    mirror_captions: tuple[str, ...]
    out: Path
    format: str
    reader: ReaderSettings
    hml: HmlVecSettings
    mirror: bool


def _convert_one(job: _Job) -> tuple[str, int, str | None]:
    """Convert one file; returns (clip id, 20-fps joint frames, error message or None)."""
    try:
        motion = get_reader(job.format, job.reader).read(job.path)
        joints = resample(motion.joints, motion.fps, HML_FPS) if motion.fps != HML_FPS else motion.joints
        variants = [(job.clip_id, joints, job.captions)]
        if job.mirror:
            variants.append((mirror_id(job.clip_id), swap_left_right(joints), job.mirror_captions))
        results = []
        for clip_id, clip_joints, captions in variants:
            vec = joints_to_hml_vec(clip_joints, HML_FPS, job.hml)
            results.append((clip_id, vec, captions))
        for clip_id, vec, captions in results:
            write_clip(job.out, clip_id, vec, recover_from_ric(vec), captions)
        return job.clip_id, len(joints), None
    except Exception as err:  # noqa: BLE001 - a batch converter reports every failure per file, never stops
        return job.clip_id, 0, f"{type(err).__name__}: {err}"


def _run_jobs(jobs: list[_Job], workers: int) -> Iterator[tuple[str, int, str | None]]:
    """Results of _convert_one per job, in job order, in this process or a process pool."""
    if workers == 1:
        yield from map(_convert_one, jobs)
        return
    # spawn, not fork: a process that has run torch holds thread-pool locks a forked child
    # can inherit locked, and the child then waits forever
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_convert_one, jobs, chunksize=4)


def convert(
    inputs: Sequence[str | Path],
    out: str | Path,
    settings: ConvertSettings,
    reader_settings: ReaderSettings | None = None,
    hml_settings: HmlVecSettings | None = None,
    progress: bool = True,
) -> dict:
    """Convert files to a HumanML3D-layout dataset at ``out`` (see the module doc).

    Returns:
        The report written to out/convert_report.json: counts, skipped files with reasons,
        frames at 20 fps, wall time, class counts, settings.

    Raises:
        FileExistsError: ``out`` already holds a dataset and overwrite is off; or overwrite is on
            and ``out`` also holds entries convert did not write (named in the message).
        FileNotFoundError: an input does not exist. ValueError: no input file, or NTU class
            names file unreadable.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out = Path(out)
    reader_settings = reader_settings or ReaderSettings()
    hml_settings = hml_settings or HmlVecSettings()
    earlier, other = earlier_outputs(out)
    if earlier and not settings.overwrite:
        raise FileExistsError(f"{out} already holds a dataset; pass --overwrite to replace it, or choose another --out")
    if earlier and other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise FileExistsError(
            f"--overwrite: {out} holds entries convert did not write ({shown}); they may name the clips being "
            "replaced (a splits/ folder drawn from them, say), and convert deletes only its own files. "
            "Move them away, or choose another --out")
    reader = get_reader(settings.format, reader_settings)
    files = collect_inputs(inputs, reader.suffixes)
    if not files:
        raise ValueError(f"no {settings.format} files ({', '.join(reader.suffixes)}) among the inputs {list(map(str, inputs))}")

    source = detect_label_source(files) if settings.labels == "auto" else settings.labels
    ntu_names = None
    if settings.class_names:
        ntu_names = [ln.strip() for ln in Path(settings.class_names).read_text().splitlines() if ln.strip()]
    template = settings.caption_template or DEFAULT_TEMPLATES["bandai" if source == "bandai" else "other"]

    skipped: list[dict[str, str]] = []
    jobs: list[_Job] = []
    labels_of: dict[str, str] = {}
    seen: set[str] = set()
    for path in files:
        clip_id = path.stem
        if clip_id in seen:
            skipped.append({"file": str(path), "reason": f"duplicate clip id {clip_id!r} (an earlier input has the same name)"})
            continue
        try:
            label = clip_label(path, source, ntu_names)
        except ValueError as err:
            skipped.append({"file": str(path), "reason": str(err)})
            continue
        seen.add(clip_id)
        captions = (template.format(**label.fields),) if label.fields else ()
        labels_of[clip_id] = label.label
        jobs.append(
            _Job(path, clip_id, captions, tuple(mirror_caption(c) for c in captions), out,
                 settings.format, reader_settings, hml_settings, settings.mirror)
        )

    for path in earlier:  # only now: a typo in the inputs above leaves the earlier dataset intact
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    converted: dict[str, int] = {}
    by_path = {j.clip_id: j.path for j in jobs}
    with tqdm(total=len(jobs), desc="convert", unit="clip", disable=not progress) as bar:
        for clip_id, frames, error in _run_jobs(jobs, settings.workers):
            bar.update(1)
            if error is None:
                converted[clip_id] = frames
            else:
                skipped.append({"file": str(by_path[clip_id]), "reason": error})

    ids = sorted(converted)
    if settings.mirror:
        ids = sorted(ids + [mirror_id(i) for i in ids])
    if ids:
        write_split(out, "all", ids)
        dataset = HumanML3D(out)
        write_mean_std(out, *mean_std(dataset.motion(i) for i in ids))
    class_counts: dict[str, int] = {}
    if source != "none" and ids:
        clip_labels = {i: labels_of[i] for i in converted}
        if settings.mirror:
            clip_labels.update({mirror_id(i): mirror_caption(labels_of[i]) for i in converted})
        if source == "ntu":
            names = ntu_names or [f"A{k + 1:03d}" for k in range(120)]
            index = {}
            for i in converted:
                index[i] = ntu_label(i)
                if settings.mirror:
                    index[mirror_id(i)] = index[i]
        else:
            names = sorted(set(labels_of.values()) | set(clip_labels.values()))
            index = {i: names.index(name) for i, name in clip_labels.items()}
        write_labels(out, ids, [index[i] for i in ids], names)
        for i in ids:
            class_counts[names[index[i]]] = class_counts.get(names[index[i]], 0) + 1

    frames = sorted(converted.values())
    report = {
        "format": settings.format,
        "inputs": len(files),
        "converted": len(converted),
        "written_clips": len(ids),
        "skipped": skipped,
        "frames_20fps": int(sum(frames)),
        "feature_frames": int(sum(f - 1 for f in frames)) * (2 if settings.mirror else 1),
        "length_frames": {"min": frames[0], "median": frames[len(frames) // 2], "max": frames[-1]} if frames else {},
        "clips_under_40_frames": sum(f < 40 for f in frames),
        "clips_over_196_frames": sum(f > 196 for f in frames),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "label_source": source,
        "caption_template": template if source != "none" else None,
        "class_counts": dict(sorted(class_counts.items())),
        "settings": {"convert": asdict(settings), "reader": asdict(reader_settings), "hml_vec": asdict(hml_settings)},
    }
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    return report


def build_parser() -> argparse.ArgumentParser:
    """Flags built from ConvertSettings, ReaderSettings and HmlVecSettings (mdm_kinemic.flags)."""
    p = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.data.convert",
        description="Convert motion files to a HumanML3D-layout dataset (263-dim features, 20 fps).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--allow_partial", action="store_true",
                   help="exit with status 0 when some files were skipped (default: 2; the others are written "
                        "either way)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_dataclass_options(p, ConvertSettings, "conversion")
    add_dataclass_options(p, ReaderSettings, "readers")
    add_dataclass_options(p, HmlVecSettings, "hml_vec")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the converter and print its report.

    Bad flags, inputs or output folder end with one message and exit status 2, as does any
    skipped file unless ``--allow_partial`` (then only a run that converted nothing).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = dataclass_from_args(ConvertSettings, args)
        reader = dataclass_from_args(ReaderSettings, args)
        hml = dataclass_from_args(HmlVecSettings, args)
    except ValueError as err:
        parser.error(str(err))
    try:
        report = convert(args.inputs, args.out, settings, reader, hml, progress=args.progress)
    except (ValueError, OSError) as err:  # FileNotFoundError, FileExistsError, unreadable class names
        print(f"convert: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    print(f"converted {report['converted']} of {report['inputs']} files into {args.out} "
          f"({report['written_clips']} clips, {report['frames_20fps']} frames at 20 fps = "
          f"{report['frames_20fps'] / HML_FPS / 60:.1f} min, {report['wall_seconds']} s)")
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} file(s):")
        for item in report["skipped"]:
            print(f"  {item['file']}: {item['reason']}")
    print(f"report: {Path(args.out) / REPORT_FILE}")
    skipped = len(report["skipped"])
    if not report["converted"] or (skipped and not args.allow_partial):
        held = f"holds the other {report['converted']}" if report["converted"] else "holds no clip"
        print(f"convert: error: {skipped} of {report['inputs']} files were skipped (reasons above and in "
              f"{Path(args.out) / REPORT_FILE}); {args.out} {held}. Fix or leave out those files"
              + (", or pass --allow_partial to accept a partial dataset" if report["converted"] else ""),
              file=sys.stderr)
        raise SystemExit(2)
    return report


if __name__ == "__main__":
    main()
