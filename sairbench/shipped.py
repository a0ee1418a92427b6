"""The shipped ``tiny`` checkpoints: their recorded commands, ``--train-missing``, and shipping.

Each recipe is the ``sairbench train`` argument list that produced the shipped file
``sairbench/checkpoints/<name>-tiny-synthetic-faces.safetensors`` (see docs/checkpoints.md).
``{semantic}`` and ``{sir}`` stand for the checkpoints of the stages a recipe builds on.

Ship a trained run (writes the safetensors file and refreshes docs/checkpoints.md)::

    python -m sairbench.shipped runs/shipped/liif liif
"""

from __future__ import annotations

import json
import re
import platform
import sys
from pathlib import Path

from sairbench.checkpoint import export_safetensors, load_checkpoint, shipped_path

RECIPES: dict[str, list[str]] = {
    "semantic": ["train", "semantic", "--steps", "1000", "--threads", "1"],
    "sir": ["train", "sir", "--steps", "1500", "--threads", "1", "--semantic-checkpoint", "{semantic}"],
    # trained side by side on one GPU by bench/train_shipped.py (8 models, 1500 steps each) ...
    "lte-gpu1500": ["train", "lte", "--steps", "1500", "--threads", "1"],
    "edsr-wo-gpu1500": ["train", "edsr-wo", "--steps", "1500", "--threads", "1"],
    "nfs": ["train", "nfs", "--steps", "1500", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "ous": ["train", "ous", "--steps", "1500", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "semlte": ["train", "semlte", "--steps", "1500", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "edsr-w": ["train", "edsr-w", "--steps", "1500", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "liif-gpu1500": ["train", "liif", "--steps", "1500", "--threads", "1"],
    "sair-gpu1500": ["train", "sair", "--steps", "1500", "--threads", "1", "--sir-checkpoint", "{sir}"],
    # ... LIIF and SAIR then 4000 steps side by side on the GPU, then two CPU fine-tuning stages in the hole
    "liif-gpu4000": ["train", "liif", "--steps", "4000", "--threads", "1"],
    "sair-gpu4000": ["train", "sair", "--steps", "4000", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "liif-ft2000": ["train", "liif", "--steps", "2000", "--threads", "1", "--hole-fraction", "1.0", "--lr", "3e-4",
                    "--lr-final", "1e-5", "--init", "{liif-gpu4000}"],
    "sair-ft2000": ["train", "sair", "--steps", "2000", "--threads", "1", "--hole-fraction", "1.0", "--lr", "3e-4",
                    "--lr-final", "1e-5", "--init", "{sair-gpu4000}", "--sir-checkpoint", "{sir}"],
    "liif-ft6000": ["train", "liif", "--steps", "6000", "--threads", "1", "--hole-fraction", "1.0", "--lr", "2e-4",
                    "--lr-final", "1e-5", "--init", "{liif-ft2000}"],
    # LTE and EDSR-wo: one CPU fine-tuning stage in the hole after the side-by-side GPU run
    "lte": ["train", "lte", "--steps", "1200", "--threads", "1", "--hole-fraction", "1.0", "--lr", "3e-4",
            "--lr-final", "1e-5", "--init", "{lte-gpu1500}"],
    "edsr-wo": ["train", "edsr-wo", "--steps", "2500", "--threads", "1", "--hole-fraction", "1.0", "--lr", "3e-4",
                "--lr-final", "1e-5", "--init", "{edsr-wo-gpu1500}"],
    # LIIF alone gets a fourth stage (issue 3: beat the best classical baseline); SAIR stops at the third
    "liif": ["train", "liif", "--steps", "8000", "--threads", "1", "--hole-fraction", "1.0", "--lr", "2e-4",
             "--lr-final", "1e-5", "--init", "{liif-ft6000}"],
    "sair": ["train", "sair", "--steps", "6000", "--threads", "1", "--hole-fraction", "1.0", "--lr", "2e-4",
             "--lr-final", "1e-5", "--init", "{sair-ft2000}", "--sir-checkpoint", "{sir}"],
}


def depends(name: str) -> list[str]:
    """The stages ``name``'s recipe builds on: the ``{stage}`` placeholders in its arguments."""
    return re.findall(r"\{([\w-]+)\}", " ".join(RECIPES.get(name, [])))


def recipe_command(name: str) -> str:
    return "sairbench " + " ".join(RECIPES[name])


def _ensure(name: str, device: str, runs_root: Path, done: dict[str, str]) -> str:
    """Path of a checkpoint for ``name``: shipped, already trained here, or trained now."""
    if name in done:
        return done[name]
    if shipped_path(name).is_file():
        done[name] = str(shipped_path(name))
        return done[name]
    from sairbench.cli import app

    deps = {dep: _ensure(dep, device, runs_root, done) for dep in depends(name)}
    run_dir = runs_root / name
    ckpt = run_dir / "last.pt"
    args = [_fill(a, deps) for a in RECIPES[name]] + ["--out", str(run_dir), "--device", device]
    if ckpt.is_file():
        if load_checkpoint(ckpt)["step"] >= int(RECIPES[name][RECIPES[name].index("--steps") + 1]):
            done[name] = str(ckpt)
            return done[name]
        args.append("--resume")
    app(args, standalone_mode=False)
    done[name] = str(ckpt)
    return done[name]


def _fill(arg: str, deps: dict[str, str]) -> str:
    for dep, path in deps.items():
        arg = arg.replace("{" + dep + "}", path)
    return arg


def train_missing_models(requested: list[str], device: str = "cpu", runs_root: str = "runs/train-missing") -> dict[str, str]:
    """Train, with its recorded command, every requested model that has no shipped checkpoint.

    Returns {name: checkpoint path} for the models (and stages) trained or found trained here.
    """
    from sairbench_baselines.presets import PRESETS

    # stages (semantic, sir, liif-gpu4000, ...) are trained only as what a requested model builds on
    wanted = [n for n in RECIPES if n in PRESETS] if "available" in requested else [n for n in requested if n in RECIPES]
    done: dict[str, str] = {}
    for name in wanted:
        if not shipped_path(name).is_file():
            _ensure(name, device, Path(runs_root), done)
    return {k: v for k, v in done.items() if not v.endswith(".safetensors")}


def ship(run_dir: str | Path, name: str, out: str | Path | None = None, checkpoint: str = "last.pt") -> Path:
    """Export ``run_dir``/``checkpoint`` as the shipped checkpoint of ``name``.

    With ``out`` None it goes into the package and docs/checkpoints.md is refreshed; else to ``out``.
    """
    ckpt = load_checkpoint(Path(run_dir) / checkpoint)
    prov = ckpt.setdefault("provenance", {})
    prov.setdefault("machine", machine_description(prov.get("device", "cpu")))  # kept when re-shipping an export
    ckpt["provenance"]["recipe"] = recipe_command(name) if name in RECIPES else ""
    target = Path(out) if out is not None else shipped_path(name)
    export_safetensors(ckpt, target)
    if out is None:
        write_checkpoints_doc()
    return target


def machine_description(device: str = "cpu") -> str:
    """E.g. 'x86_64, 2 CPU cores, Linux' (plus the GPU's name for a CUDA device)."""
    text = f"{platform.machine()}, {_cpu_count()} CPU cores, {platform.system()}"
    if device.startswith("cuda"):
        import torch

        text += f", {torch.cuda.get_device_name(device)}" if torch.cuda.is_available() else ", CUDA GPU"
    return text


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def write_checkpoints_doc(path: str | Path = Path(__file__).resolve().parents[1] / "docs" / "checkpoints.md") -> None:
    from safetensors import safe_open

    from sairbench.io import atomic_write_text

    rows = []
    for f in sorted(shipped_path("x").parent.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as sf:
            meta = json.loads(sf.metadata()["sairbench"])
        prov = meta.get("provenance", {})
        hist = meta.get("history") or [{}]
        rows.append(f"| `{f.name}` | `{prov.get('recipe', '')}` | `{prov.get('command', '')}` | {meta.get('step')} | "
                    f"{meta.get('wall_time_s', 0) / 60:.1f} | {hist[-1].get('loss', float('nan')):.4f} | "
                    f"{prov.get('machine', '')} | `{str(prov.get('commit', ''))[:10]}` | {f.stat().st_size / 1e6:.1f} MB |")
    text = ("# Shipped checkpoints\n\nTiny models trained on the built-in `synthetic-faces` (64x64). Generated by "
            "`python -m sairbench.shipped` from each file's embedded provenance. *Recipe* is the portable command "
            "that `sairbench run --train-missing` replays (`{stage}` = that stage's checkpoint, trained first when "
            "missing); *command as run* is the exact invocation, with its device and data-loading flags, which "
            "change speed, not the batches. The GPU runs trained several models side by side on one GPU "
            "(`bench/train_shipped.py`, see docs/results.md), so their wall time (the sum of step times) is that "
            "of a shared card; the CPU runs shared 2 cores with other work. Each model's table (default run, "
            "ablations, mIoU probe) is in docs/results.md.\n\n"
            "| file | recipe | command as run | steps | wall (min) | final loss | machine | commit | size |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    atomic_write_text(path, text)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(ship(sys.argv[1], sys.argv[2]))
    else:
        write_checkpoints_doc()
