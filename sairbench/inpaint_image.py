"""Inpaint (and super-resolve) one image file: the library function behind `sairbench inpaint`.

:class:`InpaintOptions` is the job's one record; :func:`inpaint_image` checks every value before
any model or image is loaded, then reads, fills, composites the known pixels back exactly as read,
and writes the PNG atomically.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from sairbench.errors import SairbenchError


@dataclass(frozen=True)
class InpaintOptions:
    """One `sairbench inpaint` job. ``model``: a registered name (``name@tag``) or a checkpoint file;
    None = the best shipped model for photographs. ``size``: the output (H, W), None = the input's.
    ``self_ensemble``: None = the model's own setting. ``max_pixels``: None = the budget in force."""

    image: Path
    mask: Path
    out: Path
    model: str | None = None
    size: tuple[int, int] | None = None
    hole_value: int = 255
    device: str = "cpu"
    precision: str = "fp32"
    max_pixels: int | None = None
    self_ensemble: int | None = None

    def check(self) -> None:
        """Every value, before any model or image is loaded; one line naming the option."""
        from sairbench import validate
        from sairbench.models.self_ensemble import check_self_ensemble
        from sairbench.tiling import check_pixels, max_pixels as budget_in_force

        validate.precision(self.precision)
        check_self_ensemble(self.self_ensemble, "--self-ensemble")
        validate.device(self.device)
        check_out_png(Path(self.out))
        if not 0 <= self.hole_value <= 255:
            raise SairbenchError(f"--hole-value {self.hole_value} is not a grey level; use 0..255 (255 = white holes).")
        if self.size is not None:
            check_pixels(*self.size, f"--size {self.size[1]}x{self.size[0]}", self.max_pixels or budget_in_force())


def check_out_png(out: Path) -> None:
    """``-o``: a .png file path whose folder is (or can be) a folder; never an existing folder."""
    if out.is_dir():
        raise SairbenchError(f"--out {out}: is an existing folder; pass a file name such as {out / 'inpainted.png'}.")
    if out.suffix.lower() != ".png":
        raise SairbenchError(f"--out {out}: the output is written as PNG; use a name ending in .png.")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SairbenchError(f"--out {out}: {parent} is a file, not a folder; choose another output path.")
            break


def load_inpainter(model: str, self_ensemble: int | None = None):
    """A registered model (``name@tag``) or a checkpoint file, with ``self_ensemble`` applied
    (None: the model's own setting)."""
    from sairbench.models.self_ensemble import with_self_ensemble

    if Path(model).suffix in (".pt", ".safetensors"):
        from sairbench.checkpoint import load_model
        from sairbench.inpainter import contract_problem

        net = load_model(model)
        problem = contract_problem(net)
        if problem is not None:
            raise SairbenchError(f"{model}: the model it holds {problem} (docs/plugins.md).")
    else:
        from sairbench.registry import create_model, get_spec, parse_name

        spec = get_spec(model)
        ok, why = spec.available(parse_name(model)[1])
        if not ok:
            raise SairbenchError(f"model '{model}' cannot run here: {unavailable_reason(why)}; {inpaint_fix(model, spec)}")
        net = create_model(model)
    return with_self_ensemble(net, self_ensemble)


def unavailable_reason(why: str) -> str:
    """The registry's reason without the advice meant for `sairbench run` (its --checkpoint flag)."""
    import re

    why = why.split("; give its file with --checkpoint")[0].split("; train it:")[0]
    return re.sub(r" ?\(--checkpoint [^)]*\)", "", why).rstrip(". ")


def inpaint_fix(model: str, spec) -> str:
    """How to inpaint with ``model`` when it is not available: train it and name the file, set the
    variable that names its weights, or mend its plugin."""
    import re

    base = model.split("@")[0]
    if spec.preset is not None:
        return (f"train it ({spec.preset.training_hint()}, which writes runs/{base}/last.pt) and pass the checkpoint "
                f"file as the model: `sairbench inpaint runs/{base}/last.pt IMAGE MASK -o OUT.png`.")
    if spec.kind == "plugin":
        return "`sairbench plugins` lists every plugin and why one did not load; fix or reinstall it."
    env = re.search(r"\$(SAIRBENCH_[A-Z0-9_]+)", spec.needs)
    if env and env.group(0) in spec.available()[1]:
        return "then run the same command."
    if env:
        return f"set ${env.group(1)} to its file and run the same command (`sairbench models {base}` says more)."
    return f"it needs {spec.needs} (`sairbench models {base}`)."


def inpaint_image(opts: InpaintOptions, console=None) -> Path:
    """Fill ``opts.image``'s hole (``opts.mask``) with ``opts.model`` and write ``opts.out``; returns it."""
    import numpy as np
    import torch

    from sairbench.domain import default_photo_model, domain_warning
    from sairbench.io import read_image, read_mask, write_png
    from sairbench.progress import progress
    from sairbench.tiling import TILE_ABOVE, max_pixels as budget_in_force, pixel_budget, query_progress

    opts.check()
    budget = opts.max_pixels or budget_in_force()
    say = console.print if console is not None else (lambda *a, **k: None)
    with pixel_budget(budget):
        model = opts.model
        if model is None:
            model = default_photo_model()
            say(f"model: {model} (the best shipped model for photographs; name another as the first argument)",
                highlight=False)
        net = load_inpainter(model, opts.self_ensemble)
        img = read_image(opts.image, max_pixels=budget)
        h, w = img.shape[:2]
        side = int(getattr(net, "min_side", 1))
        if h < side or w < side:
            raise SairbenchError(f"{opts.image}: the image is {w}x{h} but model '{model}' needs at least {side}x{side} "
                                 f"pixels (its encoder downsamples by {side}); use a larger image.")
        implicit = bool(getattr(net, "any_size", False))
        if opts.size is not None and opts.size != (h, w) and not implicit:
            raise SairbenchError(f"model '{model}' answers the input size only; drop --size or use an implicit model.")
        hole = read_mask(opts.mask, size=(h, w), hole_value=opts.hole_value, strict_size=True)
        line = domain_warning(net, model, (h, w), photograph=True)
        if line:
            say(f"[yellow]note:[/yellow] {line}", highlight=False)
        dev = torch.device(opts.device)
        net.to(dev)
        with torch.inference_mode():
            with warnings.catch_warnings():  # PIL's buffer is read-only; .float() copies it before any write
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(img).permute(2, 0, 1)[None].to(dev).float().div_(255)
            x.masked_fill_(torch.from_numpy(hole).to(dev)[None, None], 0.0)  # the model never sees the hole
            mt = torch.from_numpy(hole).to(dev)[None, None].float()
            kw = {"precision": opts.precision} if implicit else {}
            oh, ow = opts.size or (h, w)
            work = oh * ow
            if implicit and (oh, ow) == (h, w) and h * w <= TILE_ABOVE:  # known pixels are copied below: query the hole alone
                kw["region"], work = "hole", int(hole.sum())  # (larger inputs go through the memory-bounded tiles)
            passes = getattr(net, "self_ensemble", 1)  # the self-ensemble answers every pixel n times
            unit = "hole pixels" if "region" in kw else "pixels"
            with progress(work, f"inpaint {model}", unit, console) as bar, \
                    query_progress(lambda n: bar.advance(n / passes)):
                pred = net.inpaint(x, mt, size=opts.size, **kw)
            del x, mt
            result = quantised(pred.cpu())
            del pred
        if opts.size is None or opts.size == (h, w):  # at another size the model paints every pixel
            np.copyto(result, img, where=~hole[..., None])  # known pixels exactly as read
    write_png(opts.out, result)
    return Path(opts.out)


def quantised(pred, rows: int = 1 << 20):
    """(1, 3, H, W) float tensor -> uint8 (H, W, 3), by blocks of rows (bounded float64 copies)."""
    import numpy as np

    from sairbench.metrics import to_uint8

    _, _, h, w = pred.shape
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, rows // max(w, 1))
    for r in range(0, h, step):
        out[r:r + step] = to_uint8(pred[0, :, r:r + step])
    return out
