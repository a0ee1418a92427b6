"""Declarative evaluation protocols (TOML files in ``protocols/``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sairbench.errors import SairbenchError

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

PROTOCOL_DIRS = (Path.cwd() / "protocols", Path(__file__).resolve().parents[1] / "protocols")


@dataclass
class Protocol:
    name: str
    description: str = ""
    seed: int = 0
    kind: str = "inpainting"  # or "sir-miou"
    dataset: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic-faces", "split": "test", "size": 64, "limit": 100})
    masks: dict[str, Any] = field(default_factory=lambda: {"source": "auto", "hole_value": 255, "per_bucket": 100})
    metrics: dict[str, Any] = field(default_factory=lambda: {"names": ["psnr", "ssim", "l1", "lpips"], "ssim": "skimage"})
    models: dict[str, Any] = field(default_factory=lambda: {"names": ["available"]})
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        d = self.to_dict()
        d.pop("source", None)
        d.pop("description", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
    known = {f for f in Protocol.__dataclass_fields__}
    unknown = set(data) - known
    if unknown:
        raise SairbenchError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(known - {'source'})}.")
    if "name" not in data:
        raise SairbenchError(f"{path}: missing 'name'; add name = \"{path.stem}\".")
    proto = Protocol(**{**data, "source": str(path)})
    defaults = Protocol(name=proto.name)
    for section in ("dataset", "masks", "metrics", "models"):  # fill missing keys of each table
        merged = {**getattr(defaults, section), **getattr(proto, section)}
        setattr(proto, section, merged)
    return proto
