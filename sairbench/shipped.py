"""The shipped ``tiny`` checkpoints: their recipes, ``--train-missing``, and shipping.

A recipe is the `sairbench train` options that produced a shipped file
``sairbench/checkpoints/<name>-tiny-synthetic-faces.safetensors`` (see docs/checkpoints.md); it
lives with what it trains: the preset rows (``Preset.recipes``, tagged stages such as
``liif@ft6000``) and the training stages (``semantic``, ``sir``). A ``{stage}`` value stands for
the checkpoint of the stage a recipe builds on. Training goes through the library
(``sairbench.train``), never through the command line.

Ship a trained run (writes the safetensors file and refreshes docs/checkpoints.md)::

    python -m sairbench.shipped runs/shipped/liif liif
"""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path
from typing import Any

from sairbench.checkpoint import SHIPPED_DIR, export_safetensors, load_checkpoint, set_inference, shipped_path
from sairbench.train import STAGES, make_config, recipe_of, train


def depends(name: str) -> list[str]:
    """The stages ``name``'s recipe builds on: the ``{stage}`` placeholders in its options."""
    recipe = recipe_of(name) or {}
    return re.findall(r"\{([\w@.-]+)\}", " ".join(str(v) for v in recipe.values()))


def recipe_command(name: str) -> str:
    """The recipe of ``name`` as a `sairbench train` command line."""
    base = name.split("@")[0]
    args = [(f"--{k.replace('_', '-')}" if v else f"--no-{k.replace('_', '-')}") if isinstance(v, bool)
            else f"--{k.replace('_', '-')} {v}" for k, v in (recipe_of(name) or {}).items()]
    return " ".join(["sairbench train", base, *args])


def _fill(value: Any, deps: dict[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    for dep, path in deps.items():
        value = value.replace("{" + dep + "}", path)
    return value


def _ensure(name: str, device: str, runs_root: Path, done: dict[str, str]) -> str:
    """Path of a checkpoint for ``name``: shipped, already trained here, or trained now."""
    if name in done:
        return done[name]
    if shipped_path(name).is_file():
        done[name] = str(shipped_path(name))
        return done[name]
    recipe = recipe_of(name)
    if recipe is None:
        from sairbench.errors import SairbenchError

        raise SairbenchError(f"'{name}' has no recorded recipe and no shipped checkpoint; train it with `sairbench train`.")
    deps = {dep: _ensure(dep, device, runs_root, done) for dep in depends(name)}
    run_dir = runs_root / name.replace("@", "-")
    ckpt = run_dir / "last.pt"
    options = {k: _fill(v, deps) for k, v in recipe.items()}
    cfg = make_config(name.split("@")[0], given=set(options), source="recipe", **options, out=str(run_dir), device=device)
    resume = ckpt.is_file()
    if not (resume and load_checkpoint(ckpt)["step"] >= cfg.schedule.steps):
        train(cfg, resume=resume)
    done[name] = str(ckpt)
    return done[name]


def train_missing_models(requested: list[str], device: str = "cpu", runs_root: str = "runs/train-missing") -> dict[str, str]:
    """Train, with its recorded recipe, every requested model that has no shipped checkpoint.

    Returns {name: checkpoint path} for the models (and stages) trained or found trained here.
    """
    from sairbench.registry import list_models

    # stages (semantic, sir, liif@gpu4000, ...) are trained only as what a requested model builds on
    if "available" in requested:
        wanted = [m.name for m in list_models() if m.preset is not None and recipe_of(m.name) is not None]
    else:
        wanted = [n for n in requested if n in STAGES or recipe_of(n) is not None]
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
    recipe = recipe_of(name)
    ckpt["provenance"]["recipe"] = recipe_command(name) if recipe is not None else ""
    if "self_ensemble" in (recipe or {}):  # an inference setting chosen after training: no retraining
        set_inference(ckpt, self_ensemble=recipe["self_ensemble"])
    from sairbench.domain import domain_of_info

    dataset = domain_of_info(ckpt)["dataset"] or "synthetic-faces"
    target = Path(out) if out is not None else shipped_path(name, dataset=dataset)
    export_safetensors(ckpt, target)
    if out is None:
        write_checkpoints_doc()
    return target


def machine_description(device: str = "cpu") -> str:
    """E.g. 'x86_64, 2 CPU cores, Linux' (plus the GPU's name for a CUDA device)."""
    from sairbench.machine import usable_cores

    text = f"{platform.machine()}, {usable_cores()} CPU cores, {platform.system()}"
    if device.startswith("cuda"):
        import torch

        text += f", {torch.cuda.get_device_name(device)}" if torch.cuda.is_available() else ", CUDA GPU"
    return text


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
    text = ("# Shipped checkpoints\n\nTiny models trained on the built-in `synthetic-faces` (64x64), and the photo models (`*-photos-*`, `photos` dataset: 64-pixel crops of real photographs, docs/results-photos.md). Generated by "
            "`python -m sairbench.shipped` from each file's embedded provenance. *Recipe* is the portable command "
            "that `sairbench run --train-missing` replays (`{stage}` = that stage's checkpoint, trained first when "
            "missing); *command as run* is the exact invocation, with its device and data-loading flags, which "
            "change speed, not the batches. The GPU runs trained several models side by side on one GPU "
            "(`bench/train_shipped.py`, see docs/results.md), so their wall time (the sum of step times) is that "
            "of a shared card; the CPU runs shared 2 cores with other work. Each model's table (default run, "
            "ablations, mIoU probe) is in docs/results.md.\n\n"
            "All files are in checkpoint format 2 (`{'model': {'name', 'size', 'args': {'name': part, 'args'}, "
            "'sd'}}`, docs/design.md). The photo files hold "
            "the photo options and the self-ensemble as arguments of the model's spec (`prefill`, `upsample`, "
            "`input_residual`, `self_ensemble`); the loader reads them as the parts `hole-fill`, `app-resize-conv` and "
            "`liif-residual` and the inference setting `'inference': {'self_ensemble': n}` next to the spec "
            "(`sairbench/checkpoint.py`; same answers, bit for bit). The recipes are in the "
            "preset rows (`baselines/presets.py`, stages as `liif@ft6000`) and the training stages; the *recipe* "
            "column is the command recorded when each file was shipped.\n\n"
            "| file | recipe | command as run | steps | wall (min) | final loss | machine | commit | size |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    atomic_write_text(path, text)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(ship(sys.argv[1], sys.argv[2]))
    else:
        write_checkpoints_doc()


def short_reason(why: str) -> str:
    """A few words of why a model cannot run here (the full text: ``sairbench models NAME``)."""
    if "reads label maps" in why:
        return "no: semantic-headroom only"
    if "weights" in why:
        return "no: needs its weights"
    if "checkpoint" in why:
        return "no: needs a checkpoint"
    return "no"


def runnable_models() -> list[dict[str, str]]:
    """Every registered model and every stage tag of it (shipped files and recipes), one dict each:
    name, kind, description, trained on, variant, needs, ready (short), ready here (why), recipe, file."""
    from sairbench.domain import domain_text, shipped_domain
    from sairbench.registry import list_models

    rows = []
    for spec in list_models():
        recipes = spec.preset.recipes if spec.preset is not None else {}
        pattern = re.compile(rf"{re.escape(spec.name)}-(.+?)-(?:tiny|paper)-.+\.safetensors")
        shipped_tags = {m.group(1) for p in SHIPPED_DIR.glob(f"{spec.name}-*.safetensors")
                        if (m := pattern.fullmatch(p.name))}
        for tag in [None, *sorted(shipped_tags | {t for t in recipes if t})]:
            name = spec.name if tag is None else f"{spec.name}@{tag}"
            ok, why = spec.available(tag)
            path = shipped_path(name)
            recipe = recipes.get(tag or "")
            rows.append({
                "name": name, "kind": spec.kind, "description": spec.description,
                "trained on": domain_text(shipped_domain(name)) if spec.preset is not None else "-",
                "variant": variant_text(recipe) if recipe else "", "needs": spec.needs, "plugin": spec.origin,
                "ready": "yes" if ok else short_reason(why), "ready here": "yes" if ok else f"no: {why}",
                "recipe": recipe_command(name) if recipe is not None else ("" if spec.preset is None else "none"),
                "file": str(path) if spec.preset is not None and path.is_file() else "",
            })
    for base, stage in STAGES.items():  # the stages the semantic presets and the mIoU probe build on
        for name in [base, *(f"{base}@{tag}" for tag in (stage.tagged or {}))]:  # sir@labels too
            path = shipped_path(name)
            rows.append({"name": name, "kind": "stage", "description": stage.description,
                         "trained on": domain_text(shipped_domain(name)), "variant": "", "needs": "nothing",
                         "ready": "yes" if path.is_file() else "no: train it", "recipe": recipe_command(name),
                         "ready here": "yes" if path.is_file() else f"no: `{recipe_command(name)}`",
                         "file": str(path) if path.is_file() else ""})
    return rows


def variant_text(recipe: dict) -> str:
    """How a recipe's model departs from the paper's (prefill, input residual, upsampling, self-ensemble)."""
    parts = []
    if recipe.get("prefill", "zero") != "zero":
        what = {"smooth": "biharmonic", "pull-push": "pull-push"}.get(recipe["prefill"], recipe["prefill"])
        parts.append(f"sees a {what} fill of the hole" + (" and predicts a correction to it" if recipe.get("input_residual") else ""))
    if recipe.get("upsample", "transposed") != "transposed":
        parts.append(f"{recipe['upsample']} upsampling")
    if recipe.get("self_ensemble", 1) != 1:
        parts.append(f"answers as the mean over {recipe['self_ensemble']} flips/transposes")
    return ", ".join(parts) or "the paper's model"
