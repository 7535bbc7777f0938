"""Locating and importing upstream MDM (github GuyTevet/motion-diffusion-model, pinned d4fd88c).

Upstream is not a package: its scripts run from its root (``python -m sample.generate``) as
generic top-level packages (model, utils, diffusion, data_loaders, eval, sample, train,
visualize, prepare, dataset) and read data through relative paths (./dataset, ./body_models,
./save). ``import_upstream`` makes those names importable from anywhere without letting them be
shadowed or shadow anything else:

* a finder placed first on ``sys.meta_path`` answers for exactly those ten top-level names, and
  only from the upstream root, so an installed package called ``utils`` or ``eval`` (or a folder
  of that name in the working directory) cannot replace upstream's; modules of those names
  already imported from elsewhere are dropped from ``sys.modules`` with a warning;
* the upstream root is appended to the END of ``sys.path`` (for worker processes started with
  'spawn', which inherit sys.path but not the finder), so it never shadows installed packages
  or ``mdm_kinemic``, whose own modules are always imported by their full dotted names;
* OpenAI's ``clip`` is replaced by ``clip_compat`` (open_clip) when it is not importable;
* SMPL paths are made absolute and a pass-through replaces SMPL where its files are absent
  (``smpl_compat``).

Paths given by the user must be made absolute (``resolve_user_path``) before entering
``upstream_cwd``, the only place that changes directory, for upstream code that reads relative
paths (its dataset loaders and evaluators).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "MDM_ROOT_ENV",
    "SUBMODULE_ROOT",
    "UPSTREAM_PACKAGES",
    "UpstreamConflictError",
    "UpstreamNotFoundError",
    "UpstreamState",
    "import_train_loop_module",
    "import_upstream",
    "locate_upstream",
    "resolve_user_path",
    "upstream_cwd",
    "upstream_state",
]

logger = logging.getLogger(__name__)

MDM_ROOT_ENV = "MDM_ROOT"
SUBMODULE_ROOT = Path(__file__).resolve().parents[3] / "third_party" / "motion-diffusion-model"
SUBMODULE_COMMAND = "git submodule update --init third_party/motion-diffusion-model"
# every top-level folder of upstream's root that holds Python code (most have no __init__.py)
UPSTREAM_PACKAGES = (
    "model",
    "utils",
    "diffusion",
    "data_loaders",
    "eval",
    "sample",
    "train",
    "visualize",
    "prepare",
    "dataset",
)
_MARKER = Path("model") / "mdm.py"


class UpstreamNotFoundError(FileNotFoundError):
    """No upstream MDM checkout at the path given by --mdm_root, $MDM_ROOT or the submodule."""


class UpstreamConflictError(RuntimeError):
    """Upstream MDM was already imported from another root in this process."""


class UpstreamState:
    """What ``import_upstream`` set up: ``root`` (absolute Path), ``clip_stand_in`` (True when
    open_clip replaces OpenAI's clip), ``smpl_present`` (True when upstream's real SMPL is used)."""

    def __init__(self, root: Path, clip_stand_in: bool, smpl_present: bool) -> None:
        self.root = root
        self.clip_stand_in = clip_stand_in
        self.smpl_present = smpl_present

    def __repr__(self) -> str:
        return (
            f"UpstreamState(root={str(self.root)!r}, clip_stand_in={self.clip_stand_in}, "
            f"smpl_present={self.smpl_present})"
        )


_lock = threading.Lock()
_state: UpstreamState | None = None


def resolve_user_path(path: str | os.PathLike) -> Path:
    """A user-given path as an absolute Path against the CURRENT directory (``~`` expanded).

    Call this on every path from the command line or a config before ``upstream_cwd``.
    """
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def locate_upstream(mdm_root: str | os.PathLike | None = None) -> Path:
    """Find the upstream MDM checkout.

    Args:
        mdm_root: the ``--mdm_root`` flag; when None, ``$MDM_ROOT``; when unset, the submodule
            ``third_party/motion-diffusion-model`` beside this package's source tree.

    Returns:
        Absolute path of the upstream root (the folder holding model/mdm.py).

    Raises:
        UpstreamNotFoundError: that folder has no model/mdm.py; the message names the path, where
            it came from and how to populate it.
    """
    if mdm_root is not None and os.fspath(mdm_root) != "":
        root, source = resolve_user_path(mdm_root), "--mdm_root"
    elif os.environ.get(MDM_ROOT_ENV):
        root, source = resolve_user_path(os.environ[MDM_ROOT_ENV]), f"${MDM_ROOT_ENV}"
    else:
        root, source = SUBMODULE_ROOT, "the git submodule"
    if not (root / _MARKER).is_file():
        raise UpstreamNotFoundError(
            f"Upstream MDM not found at {root} (from {source}): {_MARKER} is missing. Fix: in the "
            f"mdm-kinemic checkout run `{SUBMODULE_COMMAND}`, or point --mdm_root / ${MDM_ROOT_ENV} "
            "at a clone of https://github.com/GuyTevet/motion-diffusion-model (commit d4fd88c)."
        )
    return root


class _UpstreamFinder(importlib.abc.MetaPathFinder):
    """Resolves upstream's top-level package names from its root only, before any other finder.

    Submodules (``model.mdm``) are found through the package's ``__path__`` as usual."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in UPSTREAM_PACKAGES:
            return None
        folder = self.root / fullname
        if (folder / "__init__.py").is_file():
            return importlib.util.spec_from_file_location(
                fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
        if folder.is_dir():
            # a namespace package with a fixed path: recomputing it from sys.path (what Python's
            # own namespace packages do) could pick up a same-named folder elsewhere
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        return None


def _module_root(module) -> Path | None:
    """The folder a module was loaded from, or None for built-in or synthetic modules."""
    locations = list(getattr(module, "__path__", None) or [])
    file = getattr(module, "__file__", None)
    if file:
        locations.append(os.path.dirname(file))
    return Path(os.path.abspath(locations[0])) if locations else None


def _evict_shadowing_modules(root: Path) -> None:
    """Drop already-imported modules with upstream's top-level names that are not upstream's."""
    for name in list(sys.modules):
        if name.split(".")[0] not in UPSTREAM_PACKAGES:
            continue
        origin = _module_root(sys.modules[name])
        if origin is not None and (origin == root or root in origin.parents):
            continue
        logger.warning(
            "module %r was imported from %s before upstream MDM; dropping it from sys.modules so "
            "that upstream's %r (from %s) is used", name, origin, name.split(".")[0], root
        )
        del sys.modules[name]


def _openai_clip_available() -> bool:
    """True when an importable ``clip`` is OpenAI's (it has load, tokenize, model.convert_weights)."""
    existing = sys.modules.get("clip")
    if existing is not None and getattr(existing, "mdm_kinemic_stand_in", False):
        return False
    try:
        if existing is None and importlib.util.find_spec("clip") is None:
            return False
        import clip
        import clip.model
    except ImportError:
        return False
    is_openai = all(hasattr(clip, n) for n in ("load", "tokenize")) and hasattr(clip.model, "convert_weights")
    if not is_openai:
        logger.warning(
            "the installed 'clip' module (%s) is not OpenAI's CLIP; replacing it with mdm_kinemic's "
            "open_clip stand-in for upstream MDM", getattr(clip, "__file__", "?")
        )
    return is_openai


def import_upstream(mdm_root: str | os.PathLike | None = None, *, clip_weights: str | os.PathLike | None = None) -> Path:
    """Make upstream MDM importable (``import model.mdm`` etc.) and return its root.

    Idempotent. Installs the finder and the ``sys.path`` entry described in the module docstring,
    the ``clip`` stand-in when OpenAI's ``clip`` is not importable, and the SMPL path fix or
    pass-through (``smpl_compat.install_smpl``). Does not change directory.

    Args:
        mdm_root: ``--mdm_root``; None reuses the root already imported in this process, else
            falls back to ``$MDM_ROOT`` then the submodule.
        clip_weights: ``--clip_weights`` (a path or ``"random"``) for the CLIP that upstream's
            MDM loads through the stand-in; None keeps the previous setting (initially
            ``$MDM_KINEMIC_CLIP_WEIGHTS``, then the caches). Ignored, with a warning, when
            OpenAI's ``clip`` is installed: upstream then loads CLIP its own way.

    Returns:
        Absolute upstream root.

    Raises:
        UpstreamNotFoundError: see ``locate_upstream``.
        UpstreamConflictError: upstream was imported from a different root earlier in this process.
    """
    global _state
    # An upstream script run from its own root (the patched route) has imported upstream before
    # any plugin code asks for it without a root: that root is the one to keep.
    root = _state.root if mdm_root is None and _state is not None else locate_upstream(mdm_root)
    with _lock:
        if _state is not None and _state.root != root:
            raise UpstreamConflictError(
                f"Upstream MDM is already imported from {_state.root}; one process can use one upstream "
                f"root, and {root} was requested. Use the same --mdm_root / ${MDM_ROOT_ENV} throughout."
            )
        if _state is None:
            _evict_shadowing_modules(root)
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _UpstreamFinder)]
            sys.meta_path.insert(0, _UpstreamFinder(root))
            if str(root) not in sys.path:
                sys.path.append(str(root))
            importlib.invalidate_caches()
            from mdm_kinemic.mdm.upstream import clip_compat, smpl_compat

            clip_stand_in = not _openai_clip_available()
            if clip_stand_in:
                clip_compat.install()
            smpl_present = smpl_compat.install_smpl(root)
            _state = UpstreamState(root, clip_stand_in, smpl_present)
            logger.info("upstream MDM imported from %s (%s)", root, _state)
        if clip_weights is not None:
            if _state.clip_stand_in:
                from mdm_kinemic.mdm.upstream import clip_compat

                clip_compat.configure(clip_weights)
            else:
                logger.warning(
                    "--clip_weights %s is ignored by upstream MDM: OpenAI's clip package is installed and "
                    "loads ViT-B/32 from its own cache (~/.cache/clip)", clip_weights
                )
    return root


def upstream_state() -> UpstreamState | None:
    """What ``import_upstream`` set up in this process, or None before it ran."""
    return _state


@contextlib.contextmanager
def upstream_cwd(root: str | os.PathLike | None = None) -> Iterator[Path]:
    """Run a block inside the upstream root (for upstream code reading ./dataset, ./save, ...).

    Resolve user paths with ``resolve_user_path`` BEFORE entering. The previous directory is
    restored on exit, also after an exception. Not thread-safe (the working directory is
    process-wide).

    Args:
        root: upstream root; None means the one ``import_upstream`` used (importing it first).

    Yields:
        The upstream root.
    """
    target = Path(root) if root is not None else (_state.root if _state is not None else import_upstream())
    previous = os.getcwd()
    os.chdir(target)
    try:
        yield target
    finally:
        os.chdir(previous)


def import_train_loop_module() -> types.ModuleType:
    """upstream's train.training_loop, importable where wandb is not installed.

    upstream's train/train_platforms.py runs ``import wandb`` in a class body, and
    train/training_loop.py imports it (through eval/eval_humanml.py). Where wandb is absent, a
    placeholder that raises on use is registered for that import only and removed afterwards, so
    that nothing else in the process mistakes it for the real package. Call after
    ``import_upstream``.

    Returns:
        The module train.training_loop (cached in sys.modules).
    """
    import importlib.machinery
    import importlib.util

    if "train.training_loop" in sys.modules:
        return sys.modules["train.training_loop"]
    placeholder = None
    if importlib.util.find_spec("wandb") is None:
        placeholder = types.ModuleType("wandb")
        placeholder.__spec__ = importlib.machinery.ModuleSpec("wandb", None)

        def missing(name: str) -> Any:
            raise ImportError("wandb is not installed: pip install wandb to use --train_platform_type WandBPlatform")

        placeholder.__getattr__ = missing  # type: ignore[method-assign]
        sys.modules["wandb"] = placeholder
    try:
        import train.training_loop as module
    finally:
        if placeholder is not None and sys.modules.get("wandb") is placeholder:
            del sys.modules["wandb"]
    return module
