"""The recorded commands behind the shipped ``tiny`` checkpoints, and ``--train-missing``.

Each recipe is the exact ``sairbench train`` argument list that produced the shipped file
``sairbench/checkpoints/<name>-tiny-synthetic-faces.safetensors`` (see docs/checkpoints.md).
"""

from __future__ import annotations

from pathlib import Path

from sairbench.checkpoint import shipped_path

RECIPES: dict[str, list[str]] = {
    "liif": ["train", "liif", "--steps", "3000", "--threads", "2"],
    "lte": ["train", "lte", "--steps", "3000", "--threads", "2"],
    "edsr-wo": ["train", "edsr-wo", "--steps", "3000", "--threads", "2"],
}


def recipe_command(name: str) -> str:
    return "sairbench " + " ".join(RECIPES[name])


def train_missing_models(requested: list[str], device: str = "cpu", runs_root: str = "runs/train-missing") -> dict[str, str]:
    """Train, with its recorded command, every requested preset that has no shipped checkpoint.

    Returns {name: checkpoint path} for the models trained (or found already trained) here.
    """
    from sairbench.cli import app

    names = list(RECIPES) if "available" in requested else [n for n in requested if n in RECIPES]
    out: dict[str, str] = {}
    for name in names:
        if shipped_path(name).is_file():
            continue
        run_dir = Path(runs_root) / name
        ckpt = run_dir / "last.pt"
        args = RECIPES[name] + ["--out", str(run_dir), "--device", device]
        if ckpt.is_file():
            args.append("--resume")
        app(args, standalone_mode=False)
        out[name] = str(ckpt)
    return out
