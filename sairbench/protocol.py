"""Declarative evaluation protocols (TOML files in ``protocols/``), read into typed sections.

Every key of a protocol file and its default are written once, in the section classes below; an
unknown key, a value of the wrong type or out of range (``RANGES``; an empty metric list, an unknown
mask source) is a one-line error naming the file, the key and the expected type or range, at load,
before any result is written. Sections also answer ``section["key"]`` and ``section.get("key")`` like the
dicts they are stored as in ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import reprlib
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sairbench.errors import SairbenchError

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

PROTOCOL_DIRS = (Path.cwd() / "protocols", Path(__file__).resolve().parents[1] / "protocols")
MAX_PER_BUCKET = 10_000  # masks per hole-ratio bucket (the Liu et al. 2018 test set has about 2,000)
MAX_PER_BUCKET_ENV = "SAIRBENCH_MAX_PER_BUCKET"  # raises that limit
MASK_SOURCES = ("auto", "liu2018", "generated")
RANGES = {  # key: (lowest, highest or None) of a whole number set in a protocol file
    "seed": (0, 2**63 - 1), "dataset.size": (1, None), "dataset.limit": (1, None),
    "masks.per_bucket": (1, MAX_PER_BUCKET), "masks.hole_value": (0, 255)}
_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlevel = 60, 60, 3


@dataclass(frozen=True)
class ProtocolKind:
    """What a protocol's ``kind`` runs: ``runner`` ("module:function", called with the job's
    resolved ``RunOptions`` and a console) and the run options it honours (None: every one); an
    option the user set that a kind does not honour is refused in one line, saying ``why_not``."""

    name: str
    runner: str
    description: str
    honours: frozenset[str] | None = None
    why_not: str = ""
    scores: str = ""  # the metric kind its runs score (the metric registry's ``kind``); "" = its own name
    finish: str = ""  # "module:function" (run folder, per-image table) -> None: more tables, once the run's are written
    report: str = ""  # "module:function" (per-image rows, title, label) -> report tables of its own
    labels: bool = False  # its runs give the label maps to the models that read them

    @property
    def metric_kind(self) -> str:
        return self.scores or self.name


def load_ref(ref: str):
    """The function a ``"module:function"`` reference of ``KINDS`` names (runner, finish, report)."""
    import importlib

    module, _, function = ref.partition(":")
    return getattr(importlib.import_module(module), function)


def metric_kind_of(kind: str) -> str:
    """What a run of protocol kind ``kind`` scores (``"inpainting"`` for semantic-headroom); an unknown
    kind (a meta.json from elsewhere) scores its own."""
    return KINDS[kind].metric_kind if kind in KINDS else kind


KINDS: dict[str, ProtocolKind] = {k.name: k for k in (
    ProtocolKind("inpainting", "sairbench.run:run_inpainting",
                 "every model x image x mask, scored per image and summarised by hole-ratio bucket"),
    ProtocolKind("sir-miou", "sairbench.probe:run_miou_probe",
                 "mIoU of the semantic encoder upsampled naively vs encoder + SIR (paper Table 6 left)",
                 honours=frozenset({"dataset", "data_root", "model", "checkpoint", "limit", "size", "per_bucket", "fit",
                                    "mask_dir", "name", "results", "resume", "train_missing"}),
                 why_not="the probe scores the SIR stage's embeddings in one process; no inpainting model answers"),
    ProtocolKind("semantic-headroom", "sairbench.run:run_inpainting",
                 "inpainting with the label maps given to the oracle variants, and the gap to LIIF split into "
                 "encoder error, SIR filling error and what AIR gains from perfect semantics (labelled data only)",
                 honours=frozenset({"dataset", "data_root", "model", "checkpoint", "limit", "size", "per_bucket", "fit",
                                    "mask_dir", "name", "results", "resume", "shard", "device", "threads",
                                    "train_missing"}),
                 why_not="the oracles read label maps, which a flipped or transposed image does not carry",
                 scores="inpainting", finish="sairbench.headroom:write", report="sairbench.headroom:report_tables",
                 labels=True),
)}


class _Section:
    """Dict-style read access to a dataclass section."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None


@dataclass
class DatasetSection(_Section):
    """Unset size, limit and fit come from the dataset (``sairbench.data.PROTOCOL_DEFAULTS``):
    the built-in data 64x64 / 100 images, CelebA-HQ and ADE20K 256x256 / the whole test split."""

    name: str = "synthetic-faces"
    split: str = "test"
    size: int | None = None
    limit: int | None = None
    fit: str | None = None
    root: str | None = None


@dataclass
class MasksSection(_Section):
    source: str = "auto"  # auto (the Liu et al. 2018 folder when given, else generated), liu2018, generated
    hole_value: int = 255
    per_bucket: int | None = 100
    folder: str | None = None


def _default_metric_names(kind: str = "inpainting") -> list[str]:
    from sairbench.metrics.registry import default_metrics

    return default_metrics(kind)


@dataclass
class MetricsSection(_Section):
    """Unset names are the metric registry's defaults for the protocol's kind
    (``sairbench.metrics.default_metrics``: psnr, ssim, l1, lpips for inpainting, miou for
    sir-miou); :func:`load_protocol` refuses a name the registry has not for that kind."""

    names: list[str] = field(default_factory=_default_metric_names)
    ssim: str = "skimage"


@dataclass
class ModelsSection(_Section):
    names: list[str] = field(default_factory=lambda: ["available"])


SECTIONS = {"dataset": DatasetSection, "masks": MasksSection, "metrics": MetricsSection, "models": ModelsSection}


@dataclass
class Protocol:
    name: str
    description: str = ""
    seed: int = 0
    kind: str = "inpainting"
    dataset: DatasetSection = field(default_factory=DatasetSection)
    masks: MasksSection = field(default_factory=MasksSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    models: ModelsSection = field(default_factory=ModelsSection)
    source: str = ""

    def __post_init__(self) -> None:
        for key, cls in SECTIONS.items():  # from run.json: plain dicts
            value = getattr(self, key)
            if isinstance(value, dict):
                setattr(self, key, cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_per_bucket(self, per_bucket: int | None) -> "Protocol":
        """This protocol with ``per_bucket`` masks per bucket (None: unchanged); a new object."""
        if per_bucket is None:
            return self
        from sairbench import validate

        validate.positive("--per-bucket", per_bucket)
        limit = max_per_bucket()
        if per_bucket > limit:
            raise SairbenchError(f"--per-bucket {per_bucket}: above the limit of {limit} masks per bucket; give at "
                                 f"most {limit}, or raise the limit with ${MAX_PER_BUCKET_ENV}.")
        return replace(self, masks=replace(self.masks, per_bucket=per_bucket))

    def fingerprint(self) -> str:
        d = self.to_dict()
        d.pop("source", None)
        d.pop("description", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _checked(cls, data: dict, where: str, path: Path):
    """An instance of dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if not (cls is Protocol and f.name == "source")]
    for key, value in data.items():
        if key not in known:
            raise SairbenchError(f"{path}: unknown key '{where}{key}'; allowed: {', '.join(known)}.")
        if key in SECTIONS and cls is Protocol:
            if not isinstance(value, dict):
                raise SairbenchError(f"{path}: '{key}' must be a table ([{key}]), not {type(value).__name__}.")
            continue
        if not _type_ok(value, hints[key]):
            raise SairbenchError(f"{path}: '{where}{key}' = {_short.repr(value)} must be of type {_type_name(hints[key])}.")
    return data


def available_protocols() -> list[str]:
    names = set()
    for d in PROTOCOL_DIRS:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def find_protocol(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.sep in name_or_path:
        if not p.is_file():
            raise SairbenchError(f"{p}: no such protocol file; check the path.")
        return p
    for d in PROTOCOL_DIRS:
        cand = d / f"{name_or_path}.toml"
        if cand.is_file():
            return cand
    raise SairbenchError(f"unknown protocol '{name_or_path}'; known protocols: {', '.join(available_protocols()) or 'none'} "
                         "(files in protocols/), or pass a path to a .toml file.")


def load_protocol(name_or_path: str) -> Protocol:
    path = find_protocol(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SairbenchError(f"{path}: not valid TOML ({exc}); fix the file.") from None
    except RecursionError:
        raise SairbenchError(f"{path}: not a protocol (its values nest too deep to read); fix the file.") from None
    except OSError as exc:
        raise SairbenchError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); check the file.") from None
    if "name" not in data:
        raise SairbenchError(f"{path}: missing 'name'; add name = \"{path.stem}\".")
    _checked(Protocol, data, "", path)
    if data.get("kind", "inpainting") not in KINDS:
        raise SairbenchError(f"{path}: kind = {data['kind']!r} is not one of {', '.join(KINDS)}; fix 'kind'.")
    sections = {key: cls(**_checked(cls, data.get(key, {}), f"{key}.", path)) for key, cls in SECTIONS.items()}
    kind = KINDS[data.get("kind", "inpainting")].metric_kind
    if "names" not in data.get("metrics", {}):
        sections["metrics"] = replace(sections["metrics"], names=_default_metric_names(kind))
    _check_metrics(sections["metrics"], kind, path)
    proto = Protocol(**{**data, **sections, "source": str(path)})
    _check_ranges(proto, path)
    return proto


def max_per_bucket() -> int:
    """The most masks per bucket a protocol or --per-bucket may ask for (``$SAIRBENCH_MAX_PER_BUCKET``)."""
    from sairbench.validate import env_limit

    return env_limit(MAX_PER_BUCKET_ENV, MAX_PER_BUCKET)


def _check_ranges(proto: Protocol, path: Path) -> None:
    """SairbenchError naming the file and the key unless every value set is in range (``RANGES``)
    and the mask source is known."""
    for key, (low, high) in RANGES.items():
        high = max_per_bucket() if key == "masks.per_bucket" else high
        section, _, name = key.rpartition(".")
        value = getattr(getattr(proto, section) if section else proto, name)
        if value is not None and (value < low or (high is not None and value > high)):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise_limit = f" or raise the limit with ${MAX_PER_BUCKET_ENV}" if key == "masks.per_bucket" else ""
            raise SairbenchError(f"{path}: '{key}' = {value} is out of range (give a whole number {bound}); fix "
                                 f"'{key}'{raise_limit}.")
    if proto.masks.source not in MASK_SOURCES:
        raise SairbenchError(f"{path}: 'masks.source' = {_short.repr(proto.masks.source)} is not one of "
                             f"{', '.join(MASK_SOURCES)}; fix 'masks.source'.")


def _check_metrics(metrics: MetricsSection, kind: str, path: Path) -> None:
    """SairbenchError unless every metric name is one of the registry's for ``kind`` and the SSIM
    convention is known."""
    from sairbench.metrics.conventions import SSIM_CONVENTIONS
    from sairbench.metrics.registry import check_metric_names

    if not metrics.names:
        raise SairbenchError(f"{path}: 'metrics.names' is empty; list at least one metric, or drop the key for the "
                             f"defaults ({', '.join(_default_metric_names(kind))}).")
    check_metric_names(metrics.names, kind, f"{path}: 'metrics.names': ")
    if metrics.ssim not in SSIM_CONVENTIONS:
        raise SairbenchError(f"{path}: 'metrics.ssim' = {metrics.ssim!r} is not one of {', '.join(SSIM_CONVENTIONS)}.")
