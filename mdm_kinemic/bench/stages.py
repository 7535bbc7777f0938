"""The stages of the Bandai Namco benchmark, each a command of the repo, resumable by its outputs.

    split -> teacher -> fewshot -> synth -> har -> table

=========  ==========================================================  =============================
stage      command (python -m ...)                                     done when
=========  ==========================================================  =============================
split      mdm_kinemic.bench.split (in process)                        OUT/split.json
teacher    mdm_kinemic.run train.train_mdm                             OUT/teacher/model*.pt at
           (upstream's train_mdm.py through our runner)                >= teacher_steps
fewshot    mdm_kinemic.train_fewshot --preset VARIANT, for every       OUT/fewshot/VARIANT/model*.pt
           Table 2 row (mdm_lora, base, base_dist, base_dww, full);    at >= fewshot_steps
           then mdm_kinemic.bench.mining_summary of the mining pool    OUT/results/mining.json
synth      mdm_kinemic.synth per variant, and the teacher zero-shot    OUT/synth/NAME/manifest.json
           from class prompts (mdm/sampling/prompt_model.py)           and per_class x classes clips
har        mdm_kinemic.har.evaluator: the fixed evaluator, trained     OUT/evaluator/stgcn.safetensors
           once on the target's evaluator clips; then                  and .json
           mdm_kinemic.har.evaluate for real only (once per split)     OUT/har/NAME/har_results.json
           and per synthetic set (--no-real_only; every run with the
           same seeds), generative metrics under the fixed
           evaluator; the ceiling trains on every real target clip
           outside the test set
table      mdm_kinemic.har.results_table over the har results: the     OUT/results/table1.md/.json,
           paper's Table 1 rows, with paired differences to MDM +      table2.md/.json,
           LoRA and real only, and its Table 2 (ablation) rows; then   summary.json
           the machine-readable summary (bench/summary.py)
=========  ==========================================================  =============================

Every command runs niced in a subprocess with its output in OUT/logs/STAGE-NAME.log and its
wall seconds in OUT/stage_seconds.json, each stage's in OUT/stage_wall_seconds.json; a stage whose outputs exist is skipped, so running the
driver again resumes where it stopped (a driver stopped by Ctrl-C or SIGTERM terminates its
running commands first: bench/commands.py). A command that exits non-zero stops the driver with the
log's path (``keep_going`` runs the other stages whose inputs exist and reports every failure
at the end).

By default the commands run one after the other. With ``devices`` (``--devices cuda:0,cuda:1``)
the independent commands of a stage (the five few-shot variants, the synthetic sets, the HAR
evaluations once the fixed evaluator exists) run at once, one per device, each given its device;
on CPU, ``jobs`` > 1 runs them ``jobs`` at a time with one torch thread each, and har.evaluate's
seeds share the jobs (bench/pool.py). No command's result depends on which of these runs it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mdm_kinemic.bench.commands import run_command, terminate_commands
from mdm_kinemic.bench.pool import CommandPool, Slot
from mdm_kinemic.bench.presets import BenchPreset
from mdm_kinemic.bench.split import (
    FEWSHOT_ID,
    PROMPT_TEMPLATE,
    SOURCE_DIR,
    SPLIT_FILE,
    TARGET_DIR,
    SplitSettings,
    make_split,
)
from mdm_kinemic.bench.summary import (
    MDM_LORA,
    REAL_ONLY,
    build_summary,
    split_summary,
    write_summary,
)
from mdm_kinemic.digest import file_sha256
from mdm_kinemic.flags import upstream_device_index

log = logging.getLogger(__name__)

STAGES = ("split", "teacher", "fewshot", "synth", "har", "table")
#: train_fewshot --preset values -> row names of the paper's Tables 1 and 2
VARIANTS = {
    "mdm_lora": "MDM + LoRA",
    "base": "KineMIC Base",
    "base_dist": "+ L_dist",
    "base_dww": "+ dww",
    "full": "KineMIC Full",
}
ZERO_SHOT = "zero_shot"
CEILING = "ceiling"
REAL_ONLY_ROW = "real only"
#: the synthetic sets of each results table, in the paper's row order (real only and the
#: ceiling are added to table1)
TABLES = {"table1": (ZERO_SHOT, "mdm_lora", "full"), "table2": ("base", "base_dist", "base_dww", "full")}
#: the few-shot variants of Table 1, trained on every split; the others are Table 2's ablation
TABLE1_VARIANTS = (MDM_LORA, "full")
MODEL_FILE = re.compile(r"^model(\d+)\.pt$")
#: wall seconds of every stage command, summed over resumed runs (the compute a run used;
#: commands that ran at once each count their own)
STAGE_SECONDS = "stage_seconds.json"
#: wall seconds of every stage as a whole, summed over resumed runs (a run's elapsed time;
#: a stage whose outputs exist adds about 0)
STAGE_WALL_SECONDS = "stage_wall_seconds.json"
#: what is done and what failed, and the sizes the run used (read_status)
STATUS_FILE = "status.json"
#: HarProtocol fields (and har.evaluate flags) the preset sets, with the preset field of each; a
#: recorded har result must share them with the preset to be reused
PROTOCOL_FIELDS = {"epochs": "har_epochs", "min_iterations": "har_min_iterations", "lr": "har_lr",
                   "base_channels": "har_base_channels", "clip_len": "har_clip_len", "seeds": "har_seeds"}


class StageError(RuntimeError):
    """A stage's command failed or left its outputs incomplete; the message names its log."""


def latest_step(folder: Path) -> tuple[int, Path | None]:
    """(step, file) of the latest upstream-style checkpoint model%09d.pt in ``folder`` ((-1, None) if none)."""
    best: tuple[int, Path | None] = (-1, None)
    if folder.is_dir():
        for path in folder.iterdir():
            m = MODEL_FILE.match(path.name)
            if m and int(m.group(1)) > best[0]:
                best = (int(m.group(1)), path)
    return best


def read_status(folder: Path) -> dict:
    """The driver's record of a split folder (STATUS_FILE): "teacher_step", "preset" (the sizes
    the run used), what is done and what failed; {} before a driver wrote one."""
    status = folder / STATUS_FILE
    return json.loads(status.read_text()) if status.is_file() else {}


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def checkpoint_sha256(path: Path) -> str:
    """sha256 of a checkpoint, hashed once per (path, size, modification time): a study asks for
    the same checkpoint once per configuration that samples it.

    Raises:
        OSError: the file cannot be read.
    """
    stat = path.stat()
    return _sha256_of(str(path), stat.st_size, stat.st_mtime_ns)


def _manifest_model(folder: Path) -> str | None:
    """The model_sha256 a synthetic set's manifest.json records; None when absent or unreadable."""
    try:
        run = json.loads((folder / "manifest.json").read_text()).get("run")
    except (OSError, ValueError, AttributeError):
        return None
    return run.get("model_sha256") if isinstance(run, dict) else None


def synthetic_set_done(folder: Path, clips: int, model: Path | None) -> bool:
    """True when ``folder`` is a complete synthetic set sampled from ``model``.

    Args:
        folder: an ``mdm_kinemic.synth`` output folder (manifest.json, new_joint_vecs/).
        clips: motions it must hold (per class x classes).
        model: the checkpoint it must have been sampled from (None: no checkpoint yet, never done).

    Returns:
        True when new_joint_vecs/ holds at least ``clips`` motions and manifest.json records the
        checkpoint's sha256 (a set drawn from another checkpoint is :func:`synthetic_set_stale`).
    """
    if model is None or not (folder / "new_joint_vecs").is_dir():
        return False
    if sum(1 for _ in (folder / "new_joint_vecs").glob("*.npy")) < clips:
        return False
    return _manifest_model(folder) == checkpoint_sha256(model)


def synthetic_set_stale(folder: Path, model: Path | None) -> bool:
    """True when ``folder``'s manifest records another checkpoint than ``model`` (its run was
    trained again under the same file name): synth refuses to add to it, and results scored on
    it describe the old model."""
    recorded = _manifest_model(folder)
    return model is not None and recorded is not None and recorded != checkpoint_sha256(model)


@dataclass
class Bench:
    """One benchmark run: where it reads and writes, and at which sizes.

    Attributes:
        corpus: labelled HumanML3D-layout corpus (bench/corpus.py).
        out: output folder.
        split: target contents, shots, seed.
        preset: sizes (bench/presets.py).
        python: interpreter for the stage commands.
        nice: niceness of the stage commands (0 = none).
        keep_going: after a failed stage, go on with those whose inputs exist.
        jobs: ST-GCN seeds trained at once (har.evaluate --jobs), one torch thread each; on CPU
            (without ``devices``) also the independent stage commands run at once.
        name: the split's name in summary.json.
        devices: run a stage's independent commands at once, one per device (e.g. cuda:0,
            cuda:1), each on its device; empty: the preset's device, one command at a time.
        ablation: train and evaluate Table 2's ablation variants (Base, + L_dist, + dww); False
            runs Table 1's methods only (MDM + LoRA and KineMIC Full), as the driver does for
            every target list after the first unless ``--ablation all``.
    """

    corpus: Path
    out: Path
    split: SplitSettings
    preset: BenchPreset
    python: str = sys.executable
    nice: int = 10
    keep_going: bool = False
    jobs: int = 1
    name: str = "split"
    devices: tuple[str, ...] = ()
    ablation: bool = True
    seconds_file: str = STAGE_SECONDS
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def variants(self) -> tuple[str, ...]:
        """The few-shot variants this run trains (VARIANTS' keys; without the ablation, MDM + LoRA and Full)."""
        return tuple(v for v in VARIANTS if self.ablation or v in TABLE1_VARIANTS)

    # ---- paths -------------------------------------------------------------------------
    @property
    def source(self) -> Path:
        return self.out / SOURCE_DIR

    @property
    def target(self) -> Path:
        return self.out / TARGET_DIR

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    def fewshot_dir(self, variant: str) -> Path:
        return self.out / "fewshot" / variant

    def synth_dir(self, name: str) -> Path:
        return self.out / "synth" / name

    def har_dir(self, name: str) -> Path:
        return self.out / "har" / name

    @property
    def evaluator_stem(self) -> Path:
        return self.out / "evaluator" / "stgcn"

    @property
    def results_dir(self) -> Path:
        return self.out / "results"

    @property
    def mining_base(self) -> Path:
        return self.out / "results" / "mining"

    @property
    def table_base(self) -> Path:
        return self.out / "results" / "table1"

    def n_classes(self) -> int:
        return len(self.split.target_contents)

    # ---- running -----------------------------------------------------------------------
    def _run(self, name: str, module: str, args: Sequence[str], env: dict[str, str] | None = None) -> bool:
        """Run ``python -m module args`` niced, logging to OUT/logs/NAME.log; False on failure."""
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", module, *map(str, args)]
        if self.nice:
            argv = ["nice", "-n", str(self.nice), *argv]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
        log_path = logs / f"{name}.log"
        log.info("running %s (log: %s)", " ".join(argv), log_path)
        started = time.perf_counter()
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(argv)}\n")
            f.flush()
            code = run_command(argv, f, env)
        self._record_seconds(name, time.perf_counter() - started)
        if code != 0:
            message = f"{name}: `python -m {module}` exited with {code}; see {log_path}"
            if not self.keep_going:
                raise StageError(message)
            log.error(message)
            self.failures.append(message)
            return False
        return True

    def _record_seconds(self, name: str, seconds: float, file: str | None = None) -> None:
        """Add wall seconds to OUT/``file`` under ``name`` (summed over resumed runs): a command's to
        ``seconds_file`` (stage_seconds.json), a whole stage's to stage_wall_seconds.json."""
        from mdm_kinemic.atomic import atomic_write_text

        path = self.out / (file or self.seconds_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # commands of one stage end concurrently
            recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            recorded[name] = round(recorded.get(name, 0.0) + seconds, 2)
            atomic_write_text(path, json.dumps(recorded, indent=2) + "\n")

    def _device(self, slot: Slot = None) -> str:
        """The --device of a command on ``slot`` (None: the preset's device)."""
        return slot or self.preset.device

    def _cpu_jobs(self) -> bool:
        """True when ``jobs`` > 1 runs stage commands at once on the CPU (no ``devices``)."""
        if self.devices or self.jobs < 2:
            return False
        if self.preset.device == "auto":
            import torch

            return not torch.cuda.is_available()
        return self.preset.device == "cpu"

    @contextmanager
    def _pool(self) -> Iterator[CommandPool]:
        """One slot per device, ``jobs`` one-thread CPU slots, or one slot (sequential)."""
        pool = CommandPool(list(self.devices) or (["cpu"] * self.jobs if self._cpu_jobs() else [None]))
        try:
            yield pool
        except BaseException:
            # a stopped driver (SystemExit, KeyboardInterrupt) must not wait in close() for threads
            # that wait on commands nobody stops, nor let them start the queued ones; a thread past
            # its check may still be starting one, so terminate until every slot is free
            pool.stop()
            while not pool.idle:
                terminate_commands()
                time.sleep(0.05)
            raise
        finally:
            pool.close()

    def _command(self, name: str, module: str, args: Callable[[Slot], Sequence]) -> Callable[[Slot], bool]:
        """A pool command: ``python -m module args(slot)``, one torch thread on a CPU job slot."""
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if self._cpu_jobs() else None

        def run(slot: Slot) -> bool:
            return self._run(name, module, args(slot), env)

        return run

    # ---- stages ------------------------------------------------------------------------
    def stage_split(self) -> None:
        """Write OUT/split.json, source/ and target/ (bench/split.py) unless split.json exists."""
        if not (self.out / SPLIT_FILE).is_file():
            make_split(self.corpus, self.out, self.split)

    def teacher_done(self) -> bool:
        """True when teacher/ holds a checkpoint at step >= the preset's teacher_steps."""
        return latest_step(self.teacher_dir)[0] >= self.preset.teacher_steps

    def stage_teacher(self) -> None:
        """Train the text-to-motion teacher with upstream's train_mdm.py (unless done).

        Raises:
            StageError: the command failed or left no checkpoint at the preset's steps.
        """
        if self.teacher_done():
            return
        p = self.preset
        # upstream trains whole epochs past num_steps and saves the last step anyway; four
        # saves on the way leave a usable teacher (--teacher_steps N) when a run is cut short
        log_interval = max(1, p.teacher_steps // 20)
        args = [
            "train.train_mdm", "--save_dir", self.teacher_dir, "--data_dir", self.source, "--dataset", "humanml",
            "--text_encoder_type", p.text_encoder, "--arch", "trans_enc", "--latent_dim", p.teacher_latent_dim,
            "--layers", p.teacher_layers, "--diffusion_steps", p.diffusion_steps, "--batch_size", p.teacher_batch_size,
            "--num_steps", p.teacher_steps, "--save_interval", max(1, p.teacher_steps // 4), "--log_interval", log_interval,
            "--cond_mask_prob", "0.1", "--mask_frames", "--overwrite",
        ]
        index = upstream_device_index(self.devices[0] if self.devices else p.device)
        if index is not None:  # upstream's default already means "the first GPU, else the CPU"
            args += ["--device", index]
        if self._run("teacher", "mdm_kinemic.run", args) and not self.teacher_done():
            self._fail(f"teacher: {self.teacher_dir} holds no checkpoint at step >= {p.teacher_steps}")

    def fewshot_done(self, variant: str) -> bool:
        """True when fewshot/VARIANT holds a checkpoint at step >= the preset's fewshot_steps."""
        return latest_step(self.fewshot_dir(variant))[0] >= self.preset.fewshot_steps

    def _unfinished(self, folder: Path, steps: int) -> str:
        step = latest_step(folder)[0]
        return f"no checkpoint in {folder}" if step < 0 else f"{folder} stops at step {step} of {steps}"

    def fewshot_args(self, teacher: Path, save_dir: Path, variant: str, slot: Slot = None,
                     save_interval: int | None = None) -> list:
        """train_fewshot's arguments for a student of ``teacher`` at the preset's steps and learning
        rate (the benchmark's and the calibration study's runs; flags appended later win).

        Args:
            teacher: the teacher checkpoint (model%09d.pt).
            save_dir: the run's folder.
            variant: train_fewshot's ``--preset`` (mdm_lora, base, base_dist, base_dww, full).
            slot: the pool slot that gives the device.
            save_interval: steps between checkpoints (default: the preset's few-shot steps, one
                checkpoint at the end).
        """
        p = self.preset
        return [
            "--mdm_ckpt", teacher, "--save_dir", save_dir, "--target_data", self.target,
            "--fewshot_split", FEWSHOT_ID, "--source_data", self.source, "--preset", variant,
            "--templates", PROMPT_TEMPLATE,
            "--mining_encoder", "minilm", "--num_steps", p.fewshot_steps, "--lr", p.fewshot_lr,
            "--device", self._device(slot),
            "--save_interval", p.fewshot_steps if save_interval is None else save_interval, "--no-progress",
        ]

    def stage_fewshot(self) -> None:
        """Train every unfinished few-shot variant from the finished teacher, then summarise the mining pool.

        Raises:
            StageError: no finished teacher, or a command failed.
        """
        if not self.teacher_done():
            # a student of a cut-off teacher would count as done once the teacher finishes
            self._fail(f"fewshot: no finished teacher checkpoint ({self._unfinished(self.teacher_dir, self.preset.teacher_steps)}); "
                       "run the teacher stage first")
            return
        teacher = latest_step(self.teacher_dir)[1]
        with self._pool() as pool:
            pool.wait([pool.submit(self._command(f"fewshot-{v}", "mdm_kinemic.train_fewshot",
                                                 lambda slot, v=v: self.fewshot_args(teacher, self.fewshot_dir(v), v, slot)))
                       for v in self.variants if not self.fewshot_done(v)])
        # every variant mines with the same settings; one summary of the pool serves them all
        pools = [self.fewshot_dir(v) / "mining_pool.json" for v in self.variants]
        pool = next((p for p in pools if p.is_file()), None)
        if pool is not None and not self.mining_base.with_suffix(".json").is_file():
            self.mining_base.parent.mkdir(parents=True, exist_ok=True)
            self._run("mining-summary", "mdm_kinemic.bench.mining_summary", [pool, "--out", self.mining_base])

    def _synth_model(self, name: str) -> Path | None:
        """The latest checkpoint a synthetic set samples: the teacher's for zero-shot, else its variant's."""
        return latest_step(self.teacher_dir if name == ZERO_SHOT else self.fewshot_dir(name))[1]

    def synth_done(self, name: str) -> bool:
        """True when synth/NAME holds per_class x classes motions sampled from the latest
        checkpoint of its model (the teacher's for the zero-shot set, else the variant's)."""
        return synthetic_set_done(self.synth_dir(name), self.preset.per_class * self.n_classes(), self._synth_model(name))

    def fail_stale_sets(self, sets: Mapping[Hashable, tuple[str, Path, Path, Path | None]]) -> list:
        """Fail every synthetic set drawn from an older checkpoint of its run (:func:`synthetic_set_stale`).

        Args:
            sets: {key: (command name, synth folder, its HAR folder, the latest checkpoint it samples)}.

        Returns:
            The keys of the stale sets, each failed with the two folders to delete.

        Raises:
            StageError: a stale set, unless the Bench keeps going.
        """
        stale = []
        for key, (command, synth, har, model) in sets.items():
            if synthetic_set_stale(synth, model):
                self._fail(f"{command}: {synth} was drawn from another checkpoint than {model} (its run was trained "
                           f"again); delete {synth} and {har} to draw and score it again")
                stale.append(key)
        return stale

    def _fail_stale(self, stage: str, names: Sequence[str]) -> list[str]:
        """fail_stale_sets of the benchmark's sets ``names``."""
        return self.fail_stale_sets({n: (f"{stage}-{n}", self.synth_dir(n), self.har_dir(n), self._synth_model(n))
                                     for n in names})

    def stage_synth(self) -> None:
        """Sample every unfinished synthetic set: the zero-shot teacher's and each finished variant's.

        Raises:
            StageError: a model to sample is unfinished, or a command failed.
        """
        models = {ZERO_SHOT: latest_step(self.teacher_dir)[1]}
        models.update({v: latest_step(self.fewshot_dir(v))[1] for v in self.variants})
        unfinished = {ZERO_SHOT: None if self.teacher_done() else self._unfinished(self.teacher_dir, self.preset.teacher_steps)}
        unfinished.update({v: None if self.fewshot_done(v) else self._unfinished(self.fewshot_dir(v), self.preset.fewshot_steps)
                           for v in self.variants})

        def args(name: str, slot: Slot) -> list:
            extra = ["--prompt_template", PROMPT_TEMPLATE] if name == ZERO_SHOT else []
            return [
                "--model_path", models[name], "--out", self.synth_dir(name), "--per_class", self.preset.per_class,
                "--target_data", self.target, "--fewshot_split", FEWSHOT_ID, "--device", self._device(slot),
                # the seed synth had before it took upstream generate.py's default (10): recorded runs resume
                "--seed", 0, "--grid", 3, "--no-progress", *extra,
            ]

        stale = self._fail_stale("synth", list(models))
        with self._pool() as pool:
            futures = []
            for name in models:
                if name in stale or self.synth_done(name):
                    continue
                if unfinished[name]:
                    self._fail(f"synth-{name}: no finished checkpoint to sample ({unfinished[name]}); "
                               "run the earlier stages first")
                    continue
                futures.append(pool.submit(self._command(f"synth-{name}", "mdm_kinemic.synth",
                                                         lambda slot, n=name: args(n, slot))))
            pool.wait(futures)

    def har_done(self, name: str) -> bool:
        """True when har/NAME/har_results.json exists."""
        return (self.har_dir(name) / "har_results.json").is_file()

    def _protocol_args(self, slot: Slot = None) -> list:
        # the seeds are an evaluation's own flag (_har_args): the evaluator trains one
        flags = [a for k, f in PROTOCOL_FIELDS.items() if k != "seeds" for a in (f"--{k}", getattr(self.preset, f))]
        return [*flags, "--device", self._device(slot)]

    def _har_args(self, name: str, slot: Slot = None, jobs: int | None = None) -> list:
        return ["--test", self.target, "--test_split", "test", "--seeds", self.preset.har_seeds,
                *self._protocol_args(slot), "--jobs", self.jobs if jobs is None else jobs, "--no-progress",
                "--out", self.har_dir(name)]  # a log file, not a terminal

    def evaluator_done(self) -> bool:
        """True when evaluator/stgcn.safetensors and its stgcn.json exist."""
        return self.evaluator_stem.with_suffix(".safetensors").is_file() and self.evaluator_stem.with_suffix(".json").is_file()

    def evaluator_command(self) -> Callable[[Slot], bool]:
        """The command that trains the fixed evaluator on the target's evaluator clips (for a CommandPool)."""
        return self._command("har-evaluator", "mdm_kinemic.har.evaluator", lambda slot: [
            "--train", self.target, "--train_split", "evaluator", "--test", self.target, "--test_split", "test",
            *self._protocol_args(slot), "--out", self.evaluator_stem])

    def evaluator_balanced_accuracy(self) -> float | None:
        """The fixed evaluator's balanced test accuracy (%), None before it is trained."""
        if not self.evaluator_done():
            return None
        return json.loads(self.evaluator_stem.with_suffix(".json").read_text())["test_balanced_accuracy"]

    def stale_har_results(self, results: Sequence[Path] | None = None) -> list[str]:
        """The recorded har results and the evaluator trained under another protocol than the preset's.

        Args:
            results: har_results.json files to check (default: the benchmark's own, one per method).

        Returns:
            One "FOLDER: field recorded (preset value), ..." line per stale record.
        """
        if results is None:
            results = [self.har_dir(n) / "har_results.json" for n in (CEILING, REAL_ONLY, ZERO_SHOT, *self.variants)]
        records = [(path.parent, path, PROTOCOL_FIELDS) for path in results]
        # the evaluator is one seed of its own: its seed count is not the preset's
        records.append((self.evaluator_stem, self.evaluator_stem.with_suffix(".json"),
                        {k: f for k, f in PROTOCOL_FIELDS.items() if k != "seeds"}))
        found = []
        for where, path, fields_ in records:
            if not path.is_file():
                continue
            recorded = json.loads(path.read_text()).get("protocol", {})
            differs = [f"{k} {recorded[k]} (preset {getattr(self.preset, f)})" for k, f in fields_.items()
                       if k in recorded and recorded[k] != getattr(self.preset, f)]
            if differs:
                found.append(f"{where}: {', '.join(differs)}")
        return found

    def stage_har(self) -> None:
        """Train the fixed evaluator, then every unfinished HAR evaluation (ceiling, real only, each synthetic set).

        Raises:
            StageError: recorded results of another protocol, a missing input, or a failed command.
        """
        stale = self.stale_har_results()
        if stale:  # even with keep_going: the tables would pair them
            raise StageError("har: results trained under another ST-GCN protocol would be paired with new ones: "
                             + "; ".join(stale) + ". Remove them to train them again under this preset, or pass the "
                             "flags of the protocol they used")
        # a result scored on a set of an older checkpoint would enter the tables as the new model's
        stale = self._fail_stale("har", (ZERO_SHOT, *self.variants))
        sets = [n for n in (ZERO_SHOT, *self.variants) if not self.har_done(n) and n not in stale]
        evaluations = len(sets) + sum(not self.har_done(n) for n in (CEILING, REAL_ONLY)) + (not self.evaluator_done())
        # CPU job slots: the concurrent evaluations share the jobs between their seeds
        jobs = max(1, self.jobs // max(1, min(evaluations, self.jobs))) if self._cpu_jobs() else None
        with self._pool() as pool:
            evaluator = None
            if not self.evaluator_done():
                evaluator = pool.submit(self.evaluator_command())
            futures = [] if evaluator is None else [evaluator]
            if not self.har_done(CEILING):
                futures.append(pool.submit(self._command(f"har-{CEILING}", "mdm_kinemic.har.evaluate", lambda slot: [
                    "--train_real", self.target, "--train_real_split", "full_train", "--gen_metrics", "none",
                    *self._har_args(CEILING, slot, jobs)])))
            if evaluator is not None:
                pool.wait([evaluator])  # the synthetic sets' metrics need the fixed evaluator
            if not self.har_done(REAL_ONLY) and not self.evaluator_done():
                self._fail(f"har-{REAL_ONLY}: no fixed evaluator at {self.evaluator_stem}; its command failed (see its log)")
            elif not self.har_done(REAL_ONLY):
                # once per split: the synthetic sets' evaluations share its clips and seeds
                futures.append(pool.submit(self._command(f"har-{REAL_ONLY}", "mdm_kinemic.har.evaluate", lambda slot: [
                    "--train_real", self.target, "--train_real_split", "train", "--gen_metrics", "action2motion",
                    "--recogniser_ckpt", self.evaluator_stem.with_suffix(".safetensors"),
                    *self._har_args(REAL_ONLY, slot, jobs)])))
            for name in sets:
                if not self.synth_done(name):
                    self._fail(f"har-{name}: {self.synth_dir(name)} is incomplete; run the synth stage first")
                    continue
                if not self.evaluator_done():
                    self._fail(f"har-{name}: no fixed evaluator at {self.evaluator_stem}; its command failed (see its log)")
                    continue
                futures.append(pool.submit(self._command(f"har-{name}", "mdm_kinemic.har.evaluate", lambda slot, n=name: [
                    "--train_real", self.target, "--train_real_split", "train", "--train_synthetic", self.synth_dir(n),
                    "--gen_metrics", "action2motion", "--recogniser_ckpt", self.evaluator_stem.with_suffix(".safetensors"),
                    "--no-real_only", *self._har_args(n, slot, jobs)])))
            pool.wait(futures)

    def table_rows(self, table: str = "table1") -> list[str]:
        """results_table --row values of one table for the har results present, in the paper's order.

        table1 (the paper's Table 1): real only, the zero-shot teacher, MDM + LoRA, KineMIC Full
        and the ceiling; table2 (its Table 2, the ablation): Base, + L_dist, + dww, Full, after
        the two references of the paired differences, real only and MDM + LoRA, when present
        (no rows without the ablation).

        Raises:
            ValueError: another table name.
        """
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
        if table == "table2" and not self.ablation:
            return []
        labels = {ZERO_SHOT: "MDM zero-shot (teacher)", **VARIANTS}
        present = [n for n in TABLES[table] if self.har_done(n)]
        rows = [f"{labels[n]}={self.har_dir(n) / 'har_results.json'}" for n in present]
        if table == "table2" and self.har_done(MDM_LORA):
            rows.insert(0, f"{VARIANTS[MDM_LORA]}={self.har_dir(MDM_LORA) / 'har_results.json'}")
        if self.har_done(REAL_ONLY):
            rows.insert(0, f"{REAL_ONLY_ROW}={self.har_dir(REAL_ONLY) / 'har_results.json'}:real_only")
        if table == "table1" and self.har_done(CEILING):
            rows.append(f"real target data in full (ceiling)={self.har_dir(CEILING) / 'har_results.json'}:real_only")
        return rows

    def stage_table(self) -> None:
        """Write results/table1.* and table2.* (har/results_table.py) and results/summary.json.

        Raises:
            StageError: no har results yet, or a command failed.
        """
        tables = {name: self.table_rows(name) for name in TABLES}
        if not any(tables.values()):
            self._fail("table: no har results yet; run the har stage first")
            return
        self.table_base.parent.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            if rows:
                labels = [r.split("=", 1)[0] for r in rows]
                paired = [a for ref in (VARIANTS[MDM_LORA], REAL_ONLY_ROW) if ref in labels for a in ("--paired", ref)]
                self._run(name, "mdm_kinemic.har.results_table",
                          [a for r in rows for a in ("--row", r)] + paired + ["--out", self.table_base.with_name(name)])
        try:
            runs = self.method_runs()
            write_summary(self.results_dir, build_summary({self.name: self.split_summary(runs)}, {self.name: runs}))
        except ValueError as err:
            self._fail(f"summary: {err}")

    def method_runs(self) -> dict[str, dict]:
        """{method: run of its har_results.json} for the har results present: real only, the ceiling, each synthetic set."""
        runs: dict[str, dict] = {}
        for name in (ZERO_SHOT, *self.variants):
            if self.har_done(name):
                runs[name] = json.loads((self.har_dir(name) / "har_results.json").read_text())["runs"]["real_plus_synthetic"]
        for name in (REAL_ONLY, CEILING):
            if self.har_done(name):
                runs[name] = json.loads((self.har_dir(name) / "har_results.json").read_text())["runs"]["real_only"]
        return runs

    def split_summary(self, runs: dict[str, dict]) -> dict:
        """This split's part of summary.json (bench/summary.py) from its :meth:`method_runs`."""
        return split_summary(self.split.target_contents, runs, self.evaluator_balanced_accuracy())

    def _fail(self, message: str) -> None:
        if not self.keep_going:
            raise StageError(message)
        log.error(message)
        self.failures.append(message)

    def run(self, until: str = "table", only: Sequence[str] | None = None) -> list[str]:
        """Run the stages in order up to ``until`` (or just ``only``), skipping finished ones.

        Returns:
            The failures (empty unless keep_going).

        Raises:
            ValueError: unknown stage names (the message lists them).
            StageError: a stage failed (keep_going False).
        """
        unknown = [s for s in [until, *(only or ())] if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
        todo = list(only) if only else list(STAGES[: STAGES.index(until) + 1])
        steps: dict[str, Callable[[], None]] = {s: getattr(self, f"stage_{s}") for s in STAGES}
        try:
            for stage in STAGES:
                if stage in todo:
                    log.info("stage %s", stage)
                    started = time.perf_counter()
                    try:
                        steps[stage]()
                    finally:
                        self._record_seconds(stage, time.perf_counter() - started, STAGE_WALL_SECONDS)
        except BaseException:
            # the calibration reads the sizes from status.json: a failed first run records them, but
            # a failed later one (e.g. refused for other flags) must not replace those of the results
            if not (self.out / STATUS_FILE).is_file():
                try:
                    self._write_status()
                except OSError:
                    log.exception("could not write %s", self.out / STATUS_FILE)
            raise
        self._write_status()
        return self.failures

    def _write_status(self) -> None:
        from mdm_kinemic.atomic import atomic_write_text

        status = {
            "teacher_step": latest_step(self.teacher_dir)[0],
            "fewshot_steps": {v: latest_step(self.fewshot_dir(v))[0] for v in self.variants},
            "synth_done": {n: self.synth_done(n) for n in (ZERO_SHOT, *self.variants)},
            "evaluator_done": self.evaluator_done(),
            "har_done": {n: self.har_done(n) for n in (CEILING, REAL_ONLY, ZERO_SHOT, *self.variants)},
            "failures": self.failures,
            "preset": asdict(self.preset),
        }
        atomic_write_text(self.out / STATUS_FILE, json.dumps(status, indent=2) + "\n")
