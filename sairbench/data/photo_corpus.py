"""A larger corpus of real photographs from Debian packages, fetched, checked and indexed.

``fetch_debian_photos(dest)`` runs ``apt-get download`` for the packages below (Debian/Ubuntu
machines only), unpacks each with ``dpkg -x`` into a temporary folder, copies the listed
photographs to ``dest/<package>/<file name>`` and writes ``dest/index.json``: for every file its
name, path, package and version, sha256 and licence (from the package's copyright file). Only
photographs are listed (the packages also hold drawings and renders). The ``photos`` dataset
reads the index from ``$SAIRBENCH_PHOTOS_DIR`` (or ``--data-root``).

Debian's ``opencv-doc`` example images are **reserved for an independent check**: they are never
part of this corpus, so nothing is trained, tuned or selected on them (evaluate on them with
``--dataset folder --data-root <their folder>``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sairbench.errors import SairbenchError
from sairbench.io import atomic_write_text

PHOTOS_DIR_ENV = "SAIRBENCH_PHOTOS_DIR"

# package -> (folder inside the package, photographs in it)
DEBIAN_PHOTOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mate-backgrounds": ("usr/share/backgrounds/mate", (
        "nature/Aqua.jpg", "nature/Blinds.jpg", "nature/Dune.jpg", "nature/FreshFlower.jpg", "nature/Garden.jpg",
        "nature/GreenMeadow.jpg", "nature/LadyBird.jpg", "nature/RainDrops.jpg", "nature/Storm.jpg",
        "nature/TwoWings.jpg", "nature/Wood.jpg", "nature/YellowFlower.jpg", "desktop/GreenTraditional.jpg")),
    "plasma-workspace-wallpapers": ("usr/share/wallpapers", tuple(
        f"{n}/contents/images/2560x1600.jpg" for n in (
            "Autumn", "FallenLeaf", "Path", "DarkestHour", "summer_1am", "EveningGlow", "Grey", "Kite",
            "ColorfulCups", "OneStandsOut", "ColdRipple", "BytheWater"))),
    # the Ubuntu 16.04/20.04 wallpaper contest photographs (abstract renders left out)
    "lomiri-wallpapers-16.04": ("usr/share/backgrounds", tuple(f"{n}.jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"))),
    "lomiri-wallpapers-20.04": ("usr/share/backgrounds", ("Kleiber_by_Lukas_Baubkus.jpg",)),
}
# No shipped photo checkpoint was trained on these two packages (only on mate-backgrounds and
# plasma-workspace-wallpapers of this corpus): their photographs
# that are not test photographs form the validation split, where checkpoints and inference settings
# are selected (docs/results-photos.md); nothing trains on them.
VALIDATION_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")


def _licences(copyright_file: Path) -> dict[str, str]:
    """{file pattern: licence} from a machine-readable Debian copyright file."""
    out, files = {}, None
    if not copyright_file.is_file():
        return out
    for line in copyright_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Files:"):
            files = line.split(":", 1)[1].split()
        elif line.startswith("License:") and files:
            for f in files:
                out[f] = line.split(":", 1)[1].strip()
            files = None
    return out


def _licence_of(rel: str, licences: dict[str, str]) -> str:
    """The licence of ``rel`` (a path inside the package's photo folder): as in Debian's copyright
    format, the last stanza whose pattern matches the file wins."""
    found = "see the package's copyright file"
    for pattern, lic in licences.items():
        if (pattern == rel or rel.endswith(pattern) or pattern.endswith("/" + rel)
                or re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), rel)):
            found = lic
    return found


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise SairbenchError(f"`{cmd[0]}` is not available here; the Debian photo corpus needs a Debian/Ubuntu "
                             "machine (apt-get, dpkg).") from None
    except subprocess.CalledProcessError as exc:
        raise SairbenchError(f"`{' '.join(cmd)}` failed ({' '.join(exc.stderr.split())[:200]}); run `apt-get update` "
                             "first, or check the network.") from None


def fetch_debian_photos(dest: str | Path, packages: list[str] | None = None) -> Path:
    """Fetch, check and index the corpus into ``dest``; returns the index file."""
    dest = Path(dest).expanduser()
    unknown = [p for p in packages or () if p not in DEBIAN_PHOTOS]
    if unknown:
        raise SairbenchError(f"no photographs are listed for package {unknown[0]!r}; use one of {', '.join(DEBIAN_PHOTOS)}.")
    entries = []
    for package in packages or list(DEBIAN_PHOTOS):
        base, files = DEBIAN_PHOTOS[package]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _run(["apt-get", "download", package], tmp)
            deb = next(tmp.glob("*.deb"))
            version = deb.name.split("_")[1].replace("%3a", ":")
            _run(["dpkg", "-x", str(deb), "x"], tmp)
            licences = _licences(tmp / "x" / "usr" / "share" / "doc" / package / "copyright")
            for rel in files:
                src = tmp / "x" / base / rel
                if not src.is_file():
                    raise SairbenchError(f"{package} {version}: no {base}/{rel}; the package changed, update "
                                         "sairbench.data.photo_corpus.DEBIAN_PHOTOS.")
                name = rel.split("/")[0] if "contents" in rel else Path(rel).stem
                target = dest / package / f"{name}{src.suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
                entries.append({"name": f"debian-{name}", "file": str(target.relative_to(dest)), "package": package,
                                "version": version, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                                "licence": _licence_of(rel, licences)})
    index = dest / "index.json"
    atomic_write_text(index, json.dumps({"source": "Debian packages", "photos": entries}, indent=2) + "\n")
    return index


def indexed_photos(folder: str | Path) -> list[tuple[str, Path, str]]:
    """(name, path, package) of the photographs listed in ``folder/index.json``, each checked against its sha256."""
    folder = Path(folder).expanduser()
    index = folder / "index.json"
    if not index.is_file():
        raise SairbenchError(f"{index}: missing; fill the folder with `sairbench photos fetch -o {folder}`.")
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["photos"]
    except (OSError, ValueError, KeyError) as exc:
        raise SairbenchError(f"{index}: not an index written by `sairbench photos fetch` ({type(exc).__name__}).") from None
    out = []
    for e in entries:
        path = folder / e["file"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != e["sha256"]:
            raise SairbenchError(f"{path}: missing or changed since it was indexed; fetch the corpus again.")
        out.append((e["name"], path, e.get("package", "")))
    return out
