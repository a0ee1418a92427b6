"""Outside methods: export a protocol's exact inputs, and score predictions made elsewhere.

``export_protocol`` (``sairbench masks export``) writes, for a protocol and its options, the very
images x masks ``sairbench run`` evaluates::

    OUT/
      pairs.csv       image, mask, bucket, ratio, mask_file, gt_file, input_file, pred_name
      export.json     protocol, dataset, masks, metrics and the naming convention
      masks/          <mask>.png, 255 = hole, plus manifest.json with sha256 (write_mask_set)
      gt/             <image>.png, the ground truth at the evaluation size
      inputs/         <image>__<mask>.png, the ground truth with the hole zeroed (what a model sees)

File names are "safe" versions of the dataset's image and mask names (letters, digits, ``.``,
``-`` and ``_``; ``__`` only ever separates image from mask); ``pairs.csv`` maps them back to
the names the result rows use.

``evaluate_predictions`` (``sairbench eval``) scores a folder of predictions under exactly the
protocol's conventions. **Naming:** the prediction for a pair is ``<pred-dir>/<pred_name>.<ext>``
with ``pred_name = <image>__<mask>`` (the stem of the pair's input file) and ``ext`` one of png,
jpg, jpeg (PNG recommended; JPEG is lossy). Each prediction must be RGB at the evaluation size;
only its pixels inside the hole are used: the scored image is the prediction inside the hole and
the ground truth outside, quantised to uint8, which is exactly what ``run_model_on_pairs`` scores
for a model whose raw output, rounded to uint8, is the prediction. **Pairs:** with pairs.csv, each
pair's ground truth and mask are the exact files ``gt_file`` and ``mask_file`` (rows of an export
must also follow its naming, and the ground truth must equal the exported input outside the hole);
without it, the pairs come from the prediction names and the set must be complete (every gt image
and mask used, as many predictions per image, none matching nothing), or eval refuses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import read_image, read_mask, write_png
from sairbench.protocol import MetricsSection

PRED_EXTENSIONS = (".png", ".jpg", ".jpeg")
SEP = "__"
EXPORT_FORMAT = "sairbench-export/1"
PAIR_COLUMNS = ("image", "mask", "bucket", "ratio", "mask_file", "gt_file", "input_file", "pred_name")

NAMING = (
    "prediction for a pair: <pred-dir>/<pred_name>.png (or .jpg/.jpeg), pred_name = <image>__<mask> as in "
    "pairs.csv (the stem of inputs/<input_file>); RGB at the evaluation size; only pixels inside the hole "
    "(mask 255) are used, the ground truth is kept outside it."
)


# ---------------------------------------------------------------- names


def safe_name(name: str) -> str:
    """A file-name-safe stem: runs of other characters become ``_``; no ``__``; no leading dot."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))
    s = re.sub(r"_{2,}", "_", s).strip("._ ")
    return s or "x"


def _unique_safe(names: list[str]) -> dict[str, str]:
    """{original: safe} with distinct safe names (``-2``, ``-3``, ... appended on a clash)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for n in dict.fromkeys(names):
        base = safe_name(n)
        s, k = base, 2
        while s.lower() in used:  # case-insensitive file systems
            s = f"{base}-{k}"
            k += 1
        used.add(s.lower())
        out[n] = s
    return out


# ---------------------------------------------------------------- export


def export_protocol(opts) -> tuple[Path, int]:
    """Write ``opts.out`` (``opts``: the job's resolved ``RunOptions``, the data options of the run
    whose pairs are exported; see the module docstring); returns (folder, number of pairs).

    The folder is built next to ``out`` and renamed into place, so a failure leaves nothing behind;
    an existing non-empty ``out`` is refused.
    """
    from sairbench.pairs import open_protocol_data
    from sairbench.masks import MaskItem, write_mask_set

    proto = opts.proto
    out = Path(opts.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SairbenchError(f"{out}: exists and is not an empty folder; choose a new --out folder (exports are never overwritten).")
    ds_cfg, ds, masks, mask_desc, pairs = open_protocol_data(proto, mask_dir=opts.mask_dir, ds_cfg=opts.ds_cfg)
    used_masks = sorted({p.mask_index for p in pairs})
    mask_safe = _unique_safe([masks[k].name for k in used_masks])
    image_safe = _unique_safe([p.image for p in pairs])

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        items = [MaskItem(mask_safe[masks[k].name], masks[k].mask, masks[k].ratio, masks[k].bucket) for k in used_masks]
        write_mask_set(tmp / "masks", items, {"protocol": proto.name, "masks": mask_desc,
                                              "names": {mask_safe[masks[k].name]: masks[k].name for k in used_masks}})
        rows, written_gt = [], set()
        for p in pairs:
            img_s, mask_s = image_safe[p.image], mask_safe[p.mask]
            gt = ds[p.image_index].image
            hole = np.asarray(masks[p.mask_index].mask, bool)
            if img_s not in written_gt:
                write_png(tmp / "gt" / f"{img_s}.png", gt)
                written_gt.add(img_s)
            pred_name = f"{img_s}{SEP}{mask_s}"
            write_png(tmp / "inputs" / f"{pred_name}.png", np.where(hole[..., None], np.uint8(0), gt).astype(np.uint8))
            rows.append({"image": p.image, "mask": p.mask, "bucket": p.bucket, "ratio": p.ratio,
                         "mask_file": f"{mask_s}.png", "gt_file": f"{img_s}.png", "input_file": f"{pred_name}.png",
                         "pred_name": pred_name})
        pd.DataFrame(rows, columns=list(PAIR_COLUMNS)).to_csv(tmp / "pairs.csv", index=False)
        info = {
            "format": EXPORT_FORMAT, "protocol": proto.name, "protocol_file": proto.source,
            "protocol_settings": proto.to_dict(), "seed": proto.seed, "dataset": ds_cfg, "masks": mask_desc,
            "metrics": list(proto.metrics.names),
            "ssim": proto.metrics.get("ssim", "skimage"), "pairs": len(rows), "naming": NAMING,
            "layout": {"masks": "masks/<mask_file> (255 = hole)", "gt": "gt/<gt_file>",
                       "inputs": "inputs/<input_file> (ground truth, hole pixels set to 0)"},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / "export.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "README.txt").write_text(
            f"Exported by `sairbench masks export` for protocol '{proto.name}' ({len(rows)} image x mask pairs).\n"
            "Run your method on inputs/*.png with masks/<mask_file> (see pairs.csv), then score it with\n"
            f"  sairbench eval --pred-dir PRED --gt-dir {out}/gt --mask-dir {out}/masks --pairs {out}/pairs.csv --name METHOD\n"
            f"Naming: {NAMING}\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out, len(rows)


# ---------------------------------------------------------------- eval


def _find_pairs_csv(pairs: str | os.PathLike | None, gt_dir: Path, mask_dir: Path) -> Path | None:
    if pairs is not None:
        p = Path(pairs).expanduser()
        if not p.is_file():
            raise SairbenchError(f"{p}: no such pairs file; pass the pairs.csv written by `sairbench masks export`.")
        return p
    for cand in (mask_dir.parent / "pairs.csv", gt_dir.parent / "pairs.csv", mask_dir / "pairs.csv"):
        if cand.is_file():
            return cand
    return None


def _index_files(folder: Path, what: str, exts=PRED_EXTENSIONS) -> dict[str, Path]:
    """{stem: path} of the image files directly in ``folder`` (never outside it: ``sairbench.scan``);
    two files of one stem are refused."""
    from sairbench.scan import files_in

    if not folder.is_dir():
        raise SairbenchError(f"{folder}: no such {what} folder; check the path.")
    out: dict[str, Path] = {}
    for p in files_in(folder, exts, what=f"{what} folder"):
        if p.stem in out:
            raise SairbenchError(f"{p}: {out[p.stem].name} has the same name; keep one file per {what} name.")
        out[p.stem] = p
    return out


def _read_pairs(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"image": str, "mask": str, "bucket": str, "mask_file": str, "gt_file": str,
                                      "input_file": str, "pred_name": str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SairbenchError(f"{path}: not a readable CSV ({type(exc).__name__}); re-export with `sairbench masks export`.") from None
    missing = [c for c in ("image", "mask", "bucket") if c not in df.columns]
    if missing:
        raise SairbenchError(f"{path}: missing columns {missing}; use the pairs.csv written by `sairbench masks export`.")
    if not len(df):
        raise SairbenchError(f"{path}: no pairs; re-export with `sairbench masks export`.")
    return df


def _pairs_from_files(preds: dict[str, Path], gts: dict[str, Path], masks: dict[str, Path], where: str) -> pd.DataFrame:
    """Pairs from prediction names ``<image>__<mask>`` when no pairs.csv is at hand. The set must be
    complete: every prediction matches a (gt, mask) pair, every gt image and every mask has a
    prediction, and every image has as many as the others; else one line naming the first culprit."""
    rows, unmatched = [], []
    for stem in preds:
        parts = stem.split(SEP)
        match = next(((SEP.join(parts[:k]), SEP.join(parts[k:])) for k in range(1, len(parts))
                      if SEP.join(parts[:k]) in gts and SEP.join(parts[k:]) in masks), None)
        if match is None:
            unmatched.append(stem)
            continue
        rows.append({"image": match[0], "mask": match[1], "mask_file": masks[match[1]].name,
                     "gt_file": gts[match[0]].name, "pred_name": stem})
    fix = "a partial prediction set is not scored: add the missing predictions, or pass --pairs pairs.csv naming the pairs"
    if not rows:
        raise SairbenchError(f"{where}: no prediction named <image>__<mask> matches the ground truth and mask folders; "
                             "pass --pairs pairs.csv or name predictions as documented in `sairbench eval --help`.")
    if unmatched:
        raise SairbenchError(f"{preds[unmatched[0]]}: matches no ground truth x mask pair ({len(unmatched)} of {len(preds)} "
                             "predictions match none); name it <image>__<mask> after the gt and mask files, or remove it.")
    df = pd.DataFrame(rows)
    for col, index, what in (("image", gts, "ground truth"), ("mask", masks, "mask")):
        lacking = [k for k in index if k not in set(df[col])]
        if lacking:
            raise SairbenchError(f"{index[lacking[0]]}: no prediction uses this {what} ({len(lacking)} of {len(index)} "
                                 f"have none; predictions in {where}); {fix}.")
    counts = df.groupby("image", sort=False).size()
    if counts.nunique() > 1:
        raise SairbenchError(f"{where}: image '{counts.idxmin()}' has {counts.min()} predictions but '{counts.idxmax()}' "
                             f"has {counts.max()}; {fix}.")
    return df


def _check_pair_rows(df: pd.DataFrame, path: Path, exported: bool) -> None:
    """The exact pairs of pairs.csv: plain file names; one ground truth per image and one image per
    ground truth; for an export (export.json beside it), the names it writes: gt_file =
    safe(image).png (``-k`` on a clash), mask_file likewise, pred_name = <gt stem>__<mask stem>,
    input_file = <pred_name>.png. One line naming the first wrong row."""
    def bad(i: int, what: str) -> SairbenchError:
        return SairbenchError(f"{path}: row {i + 2} (image '{df['image'].iloc[i]}', mask '{df['mask'].iloc[i]}'): {what}; "
                              "fix the row or re-export with `sairbench masks export`.")

    def named(name: str, file: str) -> bool:
        s = safe_name(name)
        return Path(file).suffix == ".png" and re.fullmatch(re.escape(s) + r"(-\d+)?", Path(file).stem) is not None

    for col in ("gt_file", "mask_file", "input_file", "pred_name"):
        for i, f in enumerate(df[col] if col in df.columns else ()):
            if not f or Path(f).name != f or f in (".", ".."):
                raise bad(i, f"{col} {f!r} is not a plain file name")
    for i, r in enumerate(df.itertuples(index=False) if exported else ()):
        if "gt_file" in df.columns and not named(r.image, r.gt_file):
            raise bad(i, f"gt_file '{r.gt_file}' is not the ground truth of image '{r.image}' (expected "
                         f"'{safe_name(r.image)}.png')")
        if "mask_file" in df.columns and not named(r.mask, r.mask_file):
            raise bad(i, f"mask_file '{r.mask_file}' is not mask '{r.mask}' (expected '{safe_name(r.mask)}.png')")
        if {"gt_file", "mask_file", "pred_name"} <= set(df.columns):
            want = f"{Path(r.gt_file).stem}{SEP}{Path(r.mask_file).stem}"
            if r.pred_name != want:
                raise bad(i, f"pred_name '{r.pred_name}' does not match gt_file and mask_file (expected '{want}')")
        if {"input_file", "pred_name"} <= set(df.columns) and r.input_file != f"{r.pred_name}.png":
            raise bad(i, f"input_file '{r.input_file}' does not match pred_name '{r.pred_name}'")
    for a, b in (("image", "gt_file"), ("gt_file", "image"), ("mask", "mask_file"), ("mask_file", "mask")):
        if a in df.columns and b in df.columns:
            n = df.groupby(a, sort=False)[b].transform("nunique")
            if (n > 1).any():
                i = int(np.argmax((n > 1).to_numpy()))
                raise bad(i, f"{a} '{df[a].iloc[i]}' goes with {int(n.iloc[i])} different {b} values")


def evaluate_predictions(pred_dir, gt_dir, mask_dir, name: str, *, pairs=None, results_root="results", proto=None,
                         batch: int = 16, console=None, progress_bar: bool = True) -> Path:
    """Score ``pred_dir``'s predictions (see the module docstring) into ``results_root/name``
    (a numbered sibling when it exists); returns the folder."""
    from sairbench.evaluate import CHUNK, score_items, sort_rows, summarize
    from sairbench.masks import bucket_of, hole_ratio
    from sairbench.metrics import conventions_dict, default_lpips_scorer
    from sairbench.runfolder import RunFolder, lpips_status
    from sairbench.tiling import max_pixels

    if not name or safe_name(name) != name.strip() or "/" in name:
        raise SairbenchError(f"--name {name!r} is not a usable folder name; use letters, digits, '.', '-' and '_'.")
    pred_dir, gt_dir, mask_dir = (Path(p).expanduser() for p in (pred_dir, gt_dir, mask_dir))
    preds = _index_files(pred_dir, "prediction")
    gts = _index_files(gt_dir, "ground-truth", (".png", ".jpg", ".jpeg", ".bmp", ".webp"))
    mask_files = _index_files(mask_dir, "mask", (".png",))
    pairs_path = _find_pairs_csv(pairs, gt_dir, mask_dir)
    export: dict[str, Any] = {}
    inputs_dir = None
    if pairs_path is not None:
        df = _read_pairs(pairs_path)
        ex = pairs_path.parent / "export.json"
        if ex.is_file():
            try:
                export = json.loads(ex.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise SairbenchError(f"{ex}: not readable JSON; re-export with `sairbench masks export`.") from None
        exported = isinstance(export, dict) and export.get("format") == EXPORT_FORMAT
        export = export if isinstance(export, dict) else {}
        _check_pair_rows(df, pairs_path, exported)
        if exported and "input_file" in df.columns and (pairs_path.parent / "inputs").is_dir():
            inputs_dir = pairs_path.parent / "inputs"  # each gt is checked against its pair's exported input
    else:
        df = _pairs_from_files(preds, gts, mask_files, str(pred_dir))
    if "mask_file" not in df.columns:
        df["mask_file"] = df["mask"].map(lambda m: f"{m}.png")
    if "gt_file" not in df.columns:  # a pairs.csv without gt_file: the image column names the gt file's stem
        df["gt_file"] = [gts[i].name if i in gts else f"{i}.png" for i in df["image"]]
    if "pred_name" not in df.columns:
        df["pred_name"] = [f"{Path(g).stem}{SEP}{Path(m).stem}" for g, m in zip(df["gt_file"], df["mask_file"])]

    # every file first, so a missing or wrong one is reported before any scoring
    where = f" (pairs from {pairs_path})" if pairs_path is not None else ""
    missing = [n for n in df["pred_name"] if n not in preds]
    if missing:
        raise SairbenchError(f"{pred_dir}: {len(missing)} of {len(df)} predictions missing{where}, first "
                             f"'{missing[0]}.png'; name each prediction <image>__<mask>.png as in pairs.csv's pred_name.")
    for col, folder, index in (("gt_file", gt_dir, gts), ("mask_file", mask_dir, mask_files)):
        absent = [f for f in dict.fromkeys(df[col]) if index.get(Path(f).stem, Path()).name != f]  # the exact file, inside
        if absent:
            raise SairbenchError(f"{folder / absent[0]}: missing ({len(absent)} {col.split('_')[0]} files missing or "
                                 f"outside the folder{where}); "
                                 f"pass the {col.split('_')[0]} folder that belongs to these pairs.")

    if proto is not None:
        metrics = list(proto.metrics.names)
        ssim_conv = proto.metrics.ssim
        proto_name, seed = proto.name, proto.seed
        ds_cfg = export.get("dataset") if export.get("protocol") == proto.name else asdict(proto.dataset)
    else:
        defaults = MetricsSection()
        metrics = list(export.get("metrics", defaults.names))
        ssim_conv = export.get("ssim", defaults.ssim)
        proto_name, seed = export.get("protocol", "outside"), export.get("seed")
        ds_cfg = export.get("dataset") or {"name": "outside", "gt_dir": str(gt_dir)}
    conventions = conventions_dict(ssim_conv, metrics)
    lpips_scorer = default_lpips_scorer() if "lpips" in metrics else None

    gt_cache: dict[str, np.ndarray] = {}
    budget = max_pixels()  # every file's size checked from its header before it is decoded
    mask_cache: dict[str, np.ndarray] = {}

    def load(r) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        gpath, mpath = gt_dir / r.gt_file, mask_dir / r.mask_file
        if r.gt_file not in gt_cache:
            gt_cache[r.gt_file] = read_image(gpath, max_pixels=budget)
        gt = gt_cache[r.gt_file]
        if r.mask_file not in mask_cache:
            mask_cache[r.mask_file] = read_mask(mpath, size=gt.shape[:2], strict_size=True)
        hole = mask_cache[r.mask_file]
        pred = read_image(preds[r.pred_name], max_pixels=budget)
        if pred.shape != gt.shape:
            raise SairbenchError(f"{preds[r.pred_name]}: prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth "
                                 f"is {gt.shape[1]}x{gt.shape[0]}; save predictions at the evaluation size.")
        ratio = hole_ratio(hole)
        if "ratio" in df.columns and abs(float(r.ratio) - ratio) > 1e-9:
            raise SairbenchError(f"{mpath}: hole ratio {ratio:.6f} differs from pairs.csv ({float(r.ratio):.6f}); "
                                 "pass the mask folder exported with this pairs.csv.")
        if inputs_dir is not None:
            inp = read_image(inputs_dir / r.input_file)
            if inp.shape != gt.shape or not np.array_equal(inp[~hole], gt[~hole]):
                raise SairbenchError(f"{gpath}: differs outside the hole from {inputs_dir / r.input_file}, the exported input "
                                     f"of pair ({r.image}, {r.mask}); pass the gt folder exported with {pairs_path}.")
        out = np.where(hole[..., None], pred, gt).astype(np.uint8)  # prediction in the hole, ground truth outside
        return out, gt, hole, ratio

    def predict(chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        loaded = [load(r) for r in chunk]
        rows = []
        for r, (_, _, _, ratio) in zip(chunk, loaded):
            bucket = str(r.bucket) if "bucket" in df.columns and str(r.bucket) else (bucket_of(ratio) or "other")
            rows.append({"image": str(r.image), "mask": str(r.mask), "bucket": bucket, "ratio": ratio, "model": name})
        return (np.stack([o for o, _, _, _ in loaded]), np.stack([g for _, g, _, _ in loaded]),
                np.stack([h for _, _, h, _ in loaded]).astype(bool), rows)

    records = list(df.itertuples(index=False))
    # chunks of CHUNK pairs as in `sairbench run`, so batched metrics (LPIPS) see the same batches
    from sairbench.progress import progress as track

    frames = []
    with track(len(records), f"eval {name}", "pairs", console, progress_bar) as bar:
        for c in range(0, len(records), CHUNK):
            frames.append(score_items(records[c:c + CHUNK], predict, metrics, ssim_conv, lpips_scorer, batch))
            bar.advance(len(frames[-1]))
    per_image = pd.concat(frames, ignore_index=True)
    per_image = sort_rows(per_image, [name])

    settings = {"pred_dir": str(pred_dir.resolve()), "gt_dir": str(gt_dir.resolve()), "mask_dir": str(mask_dir.resolve()),
                "pairs": str(pairs_path.resolve()) if pairs_path else None, "metrics": metrics, "ssim": ssim_conv,
                "protocol": proto_name, "name": name}
    folder = RunFolder.create(results_root, name, settings)
    folder.write_tables(per_image, summarize(per_image, metrics))
    meta = {
        "source": "outside", "protocol": proto_name, "protocol_file": getattr(proto, "source", None) or export.get("protocol_file"),
        "seed": seed, "dataset": ds_cfg, "masks": export.get("masks", {"folder": str(mask_dir)}),
        "models": [name], "skipped_models": {}, "model_info": {name: {"class": "outside", "predictions": str(pred_dir)}},
        "semantic_encoder": {name: None}, "conventions": conventions, "lpips": lpips_status(lpips_scorer),
        "outside": {**settings, "naming": NAMING, "export": export.get("format")}, "fingerprint": folder.fingerprint,
    }
    folder.write_meta(meta, "cpu", elapsed_s=None)
    return folder.path
