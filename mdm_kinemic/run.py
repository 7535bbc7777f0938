"""Run an upstream MDM script, unmodified, with the mdm-kinemic plugin registered.

    python -m mdm_kinemic.run sample.generate --kinemic --model_path SAVE/model000005000.pt \\
        --action_name "side kick" [--text_prompt "a person is jumping"] --num_samples 10 \\
        --num_repetitions 3 --guidance_param 2.5
    python -m mdm_kinemic.run train.train_mdm --save_dir save/teacher --data_dir DATA ...
    python -m mdm_kinemic.run eval.eval_humanml --model_path save/humanml_trans_enc_512/model000475000.pt

The first argument names the upstream script module; the rest are its own arguments plus the
plugin's (``--kinemic``, ``--action_index``, ``--timestep_respacing``, ``--norm_stats``) and this
runner's ``--mdm_root`` / ``--clip_weights`` (mdm/upstream/options.py). ``--device`` takes upstream's
integer or the names the other commands take (auto, cpu, cuda, cuda:N; flags.parse_device), given to
the script as upstream's integer. Paths are made absolute here, then
the script runs from upstream's root as upstream expects (``python -m SCRIPT`` there), with
upstream importable without a clone of OpenAI's clip or the SMPL files (mdm/upstream/locate.py) and the
hooks of mdm/sampling/hooks.py in place; on an upstream with patches/0001 applied, the patch's own plugin
hook is used instead. Outputs are upstream's (generate.py: results.npy, .txt and mp4s).
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys
from collections.abc import Sequence

__all__ = ["PATH_FLAGS", "SCRIPTS", "absolute_paths", "main", "upstream_device_flag"]

logger = logging.getLogger(__name__)

#: upstream script modules this runner serves, and what for
SCRIPTS = {
    "sample.generate": "sample motions (with --kinemic: a KineMIC student's actions)",
    "train.train_mdm": "train a plain MDM, e.g. a teacher on your data in HumanML3D layout (--data_dir)",
    "eval.eval_humanml": "evaluate a plain MDM on HumanML3D text-to-motion metrics",
}
#: upstream flags (and the plugin's) whose values are paths, made absolute before the script runs
PATH_FLAGS = ("--model_path", "--output_dir", "--input_text", "--action_file", "--dynamic_text_path",
              "--save_dir", "--data_dir", "--resume_checkpoint", "--norm_stats")


def absolute_paths(argv: Sequence[str], cwd: str | None = None) -> list[str]:
    """``argv`` with the values of PATH_FLAGS made absolute against ``cwd`` (default: the current
    directory), in both ``--flag value`` and ``--flag=value`` forms; empty values are kept. A
    ``--model_path`` folder becomes its latest model*.pt (upstream reads args.json beside the file)."""
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import latest_model_file

    cwd = os.getcwd() if cwd is None else cwd

    def absolute(flag: str, value: str) -> str:
        if not value:
            return value
        path = os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))
        if flag == "--model_path" and os.path.isdir(path):
            latest = latest_model_file(path)
            return str(latest) if latest is not None else path
        return path

    out: list[str] = []
    flag_before = None
    for arg in argv:
        if flag_before is not None:
            out.append(absolute(flag_before, arg))
            flag_before = None
        elif arg in PATH_FLAGS:
            out.append(arg)
            flag_before = arg
        elif "=" in arg and arg.split("=", 1)[0] in PATH_FLAGS:
            flag, value = arg.split("=", 1)
            out.append(f"{flag}={absolute(flag, value)}")
        else:
            out.append(arg)
    return out


def upstream_device_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--device`` in upstream's spelling, an integer (utils/parser_util.py).

    ``cpu`` becomes -1, ``cuda:N`` N, ``cuda`` 0; ``auto`` is dropped, as upstream's default (0)
    already means the first GPU when there is one, else the CPU. Integers pass unchanged.

    Raises:
        ValueError: a device no command accepts (flags.parse_device), or ``--device`` without a value.
    """
    from mdm_kinemic.flags import upstream_device_index

    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--device" or arg.startswith("--device="):
            if arg == "--device":
                if i + 1 >= len(args):
                    raise ValueError("--device: give a device (N, -1, auto, cpu, cuda or cuda:N)")
                value, i = args[i + 1], i + 2
            else:
                value, i = arg.split("=", 1)[1], i + 1
            index = upstream_device_index(value)
            if index is not None:
                out += ["--device", str(index)]
            continue
        out.append(arg)
        i += 1
    return out


def _runner_parser() -> argparse.ArgumentParser:
    from mdm_kinemic.mdm.upstream.options import add_upstream_options

    scripts = "\n".join(f"  {name:20s} {what}" for name, what in SCRIPTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.run",
        usage="%(prog)s SCRIPT [--mdm_root DIR] [--clip_weights FILE|random] [script arguments ...]",
        description="Run an upstream MDM script unmodified, with the mdm-kinemic plugin (--kinemic) registered.",
        epilog=f"SCRIPT is one of:\n{scripts}\n`%(prog)s SCRIPT --help` lists the script's own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    add_upstream_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for a bad request)."""
    from mdm_kinemic.mdm.upstream.options import UpstreamSettings

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _runner_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    script, rest = argv[0], argv[1:]
    if script not in SCRIPTS:
        parser.error(f"unknown script {script!r}; choose one of {', '.join(SCRIPTS)}")
    runner_args, script_argv = parser.parse_known_args(rest)
    try:
        upstream = UpstreamSettings.from_args(runner_args)
        script_argv = upstream_device_flag(script_argv)
    except ValueError as err:
        parser.error(str(err))
    script_argv = absolute_paths(script_argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return _run(script, script_argv, upstream)


def _run(script: str, script_argv: list[str], upstream) -> int:
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import KineMICCheckpointError
    from mdm_kinemic.mdm.sampling.plugin import PLUGIN, SamplingInputError
    from mdm_kinemic.mdm.upstream.hml_data import DataDirError
    from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_cwd
    from mdm_kinemic.text.clip import CLIPWeightsError, CLIPWeightsNotFoundError

    try:
        root = import_upstream(upstream.mdm_root, clip_weights=upstream.clip_weights)
        from mdm_kinemic.mdm.model.sentence_text import install_sentence_text

        install_sentence_text()
        if (root / "utils" / "model_plugins.py").is_file():
            # patched upstream: its own hook loads the plugin (entry point, or this variable)
            registered = [r for r in os.environ.get("MDM_MODEL_PLUGINS", "").split(",") if r]
            os.environ["MDM_MODEL_PLUGINS"] = ",".join(dict.fromkeys(registered + ["mdm_kinemic.mdm.sampling.plugin:PLUGIN"]))
            from mdm_kinemic.mdm.upstream.plotting import install_plot_fix

            install_plot_fix()
        else:
            from mdm_kinemic.mdm.sampling.hooks import install_hooks

            install_hooks(PLUGIN)
        if script != "sample.generate":
            # upstream's train_platforms.py imports wandb at import time; the training loop's
            # importer tolerates its absence (mdm/training/training_loop.py)
            from mdm_kinemic.mdm.upstream.locate import import_train_loop_module

            import_train_loop_module()
        with upstream_cwd(root):
            saved_argv = sys.argv
            sys.argv = [str(root / (script.replace(".", os.sep) + ".py")), *script_argv]
            try:
                runpy.run_module(script, run_name="__main__", alter_sys=True)
            finally:
                sys.argv = saved_argv
    except (SamplingInputError, KineMICCheckpointError, DataDirError, CLIPWeightsError, CLIPWeightsNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
