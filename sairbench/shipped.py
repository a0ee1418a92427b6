"""The shipped ``tiny`` checkpoints: their recorded commands, ``--train-missing``, and shipping.

Each recipe is the ``sairbench train`` argument list that produced the shipped file
``sairbench/checkpoints/<name>-tiny-synthetic-faces.safetensors`` (see docs/checkpoints.md).
``{semantic}`` and ``{sir}`` stand for the checkpoints of the stages a recipe builds on.

Ship a trained run (writes the safetensors file and refreshes docs/checkpoints.md)::

    python -m sairbench.shipped runs/shipped/liif liif
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from sairbench.checkpoint import export_safetensors, load_checkpoint, shipped_path

RECIPES: dict[str, list[str]] = {
    "liif": ["train", "liif", "--steps", "3000", "--threads", "2"],
    "lte": ["train", "lte", "--steps", "1000", "--threads", "1"],
    "edsr-wo": ["train", "edsr-wo", "--steps", "1000", "--threads", "1"],
    "semantic": ["train", "semantic", "--steps", "1000", "--threads", "1"],
    "sir": ["train", "sir", "--steps", "1500", "--threads", "1", "--semantic-checkpoint", "{semantic}"],
    "sair": ["train", "sair", "--steps", "3000", "--keep-every", "250", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "nfs": ["train", "nfs", "--steps", "1000", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "ous": ["train", "ous", "--steps", "1000", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "semlte": ["train", "semlte", "--steps", "1000", "--threads", "1", "--sir-checkpoint", "{sir}"],
    "edsr-w": ["train", "edsr-w", "--steps", "1000", "--threads", "1", "--sir-checkpoint", "{sir}"],
}
DEPENDS = {"sir": "semantic", **{k: "sir" for k, v in RECIPES.items() if "{sir}" in v}}


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

    deps = {}
    if name in DEPENDS:
        dep = DEPENDS[name]
        deps[dep] = _ensure(dep, device, runs_root, done)
    run_dir = runs_root / name
    ckpt = run_dir / "last.pt"
    args = [a.format(**deps) for a in RECIPES[name]] + ["--out", str(run_dir), "--device", device]
    if ckpt.is_file():
        if load_checkpoint(ckpt)["step"] >= int(RECIPES[name][RECIPES[name].index("--steps") + 1]):
            done[name] = str(ckpt)
            return done[name]
        args.append("--resume")
    app(args, standalone_mode=False)
    done[name] = str(ckpt)
    return done[name]


def train_missing_models(requested: list[str], device: str = "cpu", runs_root: str = "runs/train-missing") -> dict[str, str]:
    """Train, with its recorded command, every requested model that has no shipped checkpoint.

    Returns {name: checkpoint path} for the models (and stages) trained or found trained here.
    """
    wanted = [n for n in RECIPES if n not in ("semantic",)] if "available" in requested else \
        [n for n in requested if n in RECIPES]
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
        rows.append(f"| `{f.name}` | `{prov.get('command', '')}` | {meta.get('step')} | "
                    f"{meta.get('wall_time_s', 0) / 60:.1f} | {hist[-1].get('loss', float('nan')):.4f} | "
                    f"{prov.get('machine', '')} | `{str(prov.get('commit', ''))[:10]}` | {f.stat().st_size / 1e6:.1f} MB |")
    text = ("# Shipped checkpoints\n\nTiny models trained on the built-in `synthetic-faces` (64x64) on the CPU. "
            "Generated by `python -m sairbench.shipped` from each file's embedded provenance; wall time is the "
            "sum of step times (the machine was shared with other work, so it is pessimistic). Retrain any of "
            "them with the command shown (`sairbench run --train-missing` does it for missing files). Each "
            "model's table (default run, ablations, mIoU probe) is in docs/results.md.\n\n"
            "| file | command | steps | wall (min) | final loss | machine | commit | size |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    atomic_write_text(path, text)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(ship(sys.argv[1], sys.argv[2]))
    else:
        write_checkpoints_doc()
