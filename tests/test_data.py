"""Dataset loaders on tiny fixtures written in each dataset's official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sairbench.data import (
    ADE20K_CLASSES,
    CELEBAMASK_CLASSES,
    DATASET_NAMES,
    ImageDataset,
    Sample,
    get_dataset,
)
from sairbench.errors import SairbenchError

C = {name: k for k, name in enumerate(CELEBAMASK_CLASSES)}


def _rgb(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def _gray(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


# ---------------------------------------------------------------- class lists


def test_class_lists():
    assert len(CELEBAMASK_CLASSES) == 19 and CELEBAMASK_CLASSES[0] == "background"
    assert CELEBAMASK_CLASSES[1:4] == ("skin", "nose", "eye_g") and CELEBAMASK_CLASSES[-1] == "cloth"
    assert len(ADE20K_CLASSES) == 150 and len(set(ADE20K_CLASSES)) == 150
    assert ADE20K_CLASSES[:5] == ("wall", "building", "sky", "floor", "tree") and ADE20K_CLASSES[-1] == "flag"
    assert set(DATASET_NAMES) == {"synthetic-faces", "celeba-hq", "ade20k", "folder", "photos"}


# ---------------------------------------------------------------- CelebAMask-HQ


def _part(h: int = 16, w: int = 16) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    root = tmp_path / "CelebAMask-HQ"
    for i in (0, 1, 25000):
        _rgb(root / "CelebA-HQ-img" / f"{i}.jpg", 32, 32, seed=i)  # images at 2x the label size
    anno = root / "CelebAMask-HQ-mask-anno"
    skin, hair, l_eye, cloth = _part(), _part(), _part(), _part()
    skin[2:14, 2:14] = 255
    hair[0:5, :] = 255  # overlaps skin: hair (13) comes later and wins
    l_eye[4:7, 4:7] = 255  # partly under hair: hair wins on row 4, eye stays on rows 5-6
    cloth[14:, :] = 255
    _gray(anno / "0" / "00000_skin.png", skin)
    _gray(anno / "0" / "00000_hair.png", hair)
    _gray(anno / "0" / "00000_l_eye.png", l_eye)
    Image.fromarray(np.repeat(cloth[..., None], 3, 2)).save(anno / "0" / "00000_cloth.png")  # RGB part file
    _gray(anno / "0" / "00001_skin.png", skin)
    _gray(anno / "12" / "25000_skin.png", skin)  # folder = index // 2000
    _gray(anno / "12" / "25000_nose.png", l_eye)
    return root


def test_celeba_merge_and_split(celeba_root: Path):
    train = get_dataset("celeba-hq", split="train", size=16, root=celeba_root)
    assert isinstance(train, ImageDataset) and len(train) == 2 and train.classes == list(CELEBAMASK_CLASSES)
    s = train[0]
    assert isinstance(s, Sample) and s.name == "0"
    assert s.image.shape == (16, 16, 3) and s.image.dtype == np.uint8
    assert s.label.shape == (16, 16) and s.label.dtype == np.int64
    lab = s.label
    assert lab[0, 0] == C["hair"] and lab[4, 4] == C["hair"]  # hair over skin and eye
    assert lab[5, 5] == C["l_eye"] and lab[6, 6] == C["l_eye"]
    assert lab[10, 10] == C["skin"] and lab[8, 1] == C["background"]
    assert lab[15, 3] == C["cloth"]
    test = get_dataset("celeba-hq", split="test", size=16, root=celeba_root)
    assert [test[i].name for i in range(len(test))] == ["25000"]
    assert test[0].label[5, 5] == C["nose"]
    assert len(get_dataset("celeba-hq", split="train", size=16, root=celeba_root, limit=1)) == 1


def test_celeba_without_annotations(tmp_path: Path):
    root = tmp_path / "CelebAMask-HQ"
    _rgb(root / "CelebA-HQ-img" / "3.jpg", 20, 24)
    ds = get_dataset("celeba-hq", split="train", size=8, root=root)
    assert ds.classes == [] and ds[0].label is None and ds[0].image.shape == (8, 8, 3)


def test_celeba_root_from_env(celeba_root: Path, monkeypatch):
    monkeypatch.setenv("SAIRBENCH_DATA_ROOT", str(celeba_root.parent))
    assert len(get_dataset("celeba-hq", split="train", size=16)) == 2
    monkeypatch.delenv("SAIRBENCH_DATA_ROOT")
    with pytest.raises(SairbenchError, match="SAIRBENCH_DATA_ROOT"):
        get_dataset("celeba-hq")


def test_celeba_wrong_layout(tmp_path: Path):
    root = tmp_path / "celeba"
    _rgb(root / "images" / "0.jpg", 8, 8)
    with pytest.raises(SairbenchError, match="CelebA-HQ-img") as err:
        get_dataset("celeba-hq", root=root)
    assert str(root) in str(err.value) and "--data-root" in str(err.value)


# ---------------------------------------------------------------- ADE20K


@pytest.fixture
def ade_root(tmp_path: Path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    for sub, prefix in (("training", "ADE_train_"), ("validation", "ADE_val_")):
        for k in (1, 2):
            stem = f"{prefix}{k:08d}"
            _rgb(root / "images" / sub / f"{stem}.jpg", 12, 16, seed=k)
            ann = np.zeros((12, 16), np.uint8)
            ann[:, 2:] = 1  # wall
            ann[:, 8:] = 150  # flag
            ann[0, :] = 0  # other
            _gray(root / "annotations" / sub / f"{stem}.png", ann)
    return root


def test_ade20k(ade_root: Path):
    ds = get_dataset("ade20k", split="train", size=12, root=ade_root)
    assert len(ds) == 2 and ds.classes == list(ADE20K_CLASSES)
    s = ds[0]
    assert s.name == "ADE_train_00000001" and s.image.shape == (12, 12, 3) and s.label.dtype == np.int64
    # centre crop 12x16 -> columns 2..13 of the original
    assert s.label[0, 5] == 255  # 0 = other -> ignore
    assert s.label[5, 0] == 0  # 1 = wall -> 0
    assert s.label[5, 11] == 149  # 150 = flag -> 149
    val = get_dataset("ade20k", split="test", size=12, root=ade_root)
    assert [val[i].name for i in range(2)] == ["ADE_val_00000001", "ADE_val_00000002"]
    assert get_dataset("ade20k", split="val", size=12, root=ade_root)[1].name == "ADE_val_00000002"


def test_ade20k_missing_annotations(ade_root: Path):
    import shutil

    shutil.rmtree(ade_root / "annotations" / "validation")
    with pytest.raises(SairbenchError, match="annotations") as err:
        get_dataset("ade20k", split="test", root=ade_root)
    assert str(ade_root) in str(err.value)


# ---------------------------------------------------------------- folder, photos


def test_folder_with_labels(tmp_path: Path):
    root = tmp_path / "mine"
    _rgb(root / "images" / "b.png", 10, 10)
    _rgb(root / "images" / "a.jpg", 10, 10)
    (root / "images" / "notes.txt").write_text("not an image")
    lab = np.full((10, 10), 3, np.uint8)
    _gray(root / "labels" / "a.png", lab)
    _gray(root / "labels" / "b.png", lab * 0)
    (root / "classes.txt").write_text("sky\ngrass\nroad\ncar\n")
    ds = get_dataset("folder", root=root, size=10)
    assert [ds[i].name for i in range(len(ds))] == ["a", "b"]
    assert ds.classes == ["sky", "grass", "road", "car"]
    assert ds[0].label.dtype == np.int64 and np.all(ds[0].label == 3) and np.all(ds[1].label == 0)
    # a plain image folder with label_root given explicitly
    ds2 = get_dataset("folder", root=root / "images", size=8, label_root=root / "labels", limit=1)
    assert len(ds2) == 1 and ds2[0].label.shape == (8, 8)
    assert get_dataset("folder", root=root / "images", size=8)[0].label is None


def test_folder_missing_label(tmp_path: Path):
    _rgb(tmp_path / "images" / "a.png", 8, 8)
    (tmp_path / "labels").mkdir()
    with pytest.raises(SairbenchError, match="a.png"):
        get_dataset("folder", root=tmp_path, size=8)[0]


def test_photos():
    ds = get_dataset("photos", size=32)
    assert len(ds) >= 3
    names = set()
    for i in range(3):
        s = ds[i]
        assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8 and s.label is None
        assert s.image.std() > 5  # a real picture, not a blank
        names.add(s.name)
    assert len(names) == 3
    assert len(get_dataset("photos", limit=2)) == 2


# ---------------------------------------------------------------- errors


def test_unknown_dataset():
    with pytest.raises(SairbenchError, match="unknown dataset 'nope'.*synthetic-faces"):
        get_dataset("nope")


def test_empty_folder(tmp_path: Path):
    with pytest.raises(SairbenchError) as err:
        get_dataset("folder", root=tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(SairbenchError) as err:
        get_dataset("ade20k", root=tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(SairbenchError) as err:
        get_dataset("celeba-hq", root=tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value)


def test_corrupt_image(tmp_path: Path, celeba_root: Path):
    bad = tmp_path / "imgs" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = get_dataset("folder", root=bad.parent)
    with pytest.raises(SairbenchError, match="broken.png"):
        ds[0]
    (celeba_root / "CelebA-HQ-img" / "1.jpg").write_bytes(b"garbage")
    with pytest.raises(SairbenchError, match="1.jpg"):
        get_dataset("celeba-hq", split="train", root=celeba_root)[1]
    part = celeba_root / "CelebAMask-HQ-mask-anno" / "0" / "00000_hair.png"
    part.write_bytes(b"garbage")
    with pytest.raises(SairbenchError, match="00000_hair.png"):
        get_dataset("celeba-hq", split="train", root=celeba_root)[0]


def test_sample_name_matches_samples(celeba_root: Path, ade_root: Path):
    for ds in (get_dataset("synthetic-faces", limit=2), get_dataset("photos", limit=2),
               get_dataset("celeba-hq", split="train", size=8, root=celeba_root),
               get_dataset("ade20k", size=8, root=ade_root)):
        assert [ds.sample_name(i) for i in range(len(ds))] == [s.name for s in ds]


def test_index_errors():
    ds = get_dataset("synthetic-faces", limit=3)
    assert ds[-1].name == ds[2].name
    with pytest.raises(IndexError):
        ds[3]
    assert len(list(ds)) == 3


# ---------------------------------------------------------------- synthetic-faces


def test_synthetic_faces_deterministic_and_index_independent():
    a = get_dataset("synthetic-faces", split="train", seed=3)
    b = get_dataset("synthetic-faces", split="train", seed=3, limit=10)
    assert len(a) == 20000 and len(get_dataset("synthetic-faces")) == 1000
    for i in (7, 2, 7):  # order and caching do not matter
        sa, sb = a[i], b[i]
        assert sa.name == sb.name
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.label, sb.label)
    sa = a[7]
    sa.image[:] = 0  # mutating a returned sample leaves the cache intact
    assert np.array_equal(a[7].image, b[7].image)
    assert not np.array_equal(a[0].image, a[1].image)
    test = get_dataset("synthetic-faces", split="test", seed=3)
    assert not np.array_equal(a[0].image, test[0].image)
    other = get_dataset("synthetic-faces", split="train", seed=4)
    assert not np.array_equal(a[0].image, other[0].image)


def test_synthetic_faces_shapes_and_classes():
    ds = get_dataset("synthetic-faces", split="test", size=64, limit=300)
    seen = np.zeros(len(CELEBAMASK_CLASSES), bool)
    eye_fracs = []
    for s in ds:
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert s.label.shape == (64, 64) and s.label.dtype == np.int64
        assert s.label.min() >= 0 and s.label.max() < len(CELEBAMASK_CLASSES)
        seen[np.unique(s.label)] = True
        eyes = np.isin(s.label, (C["l_eye"], C["r_eye"])).mean()
        eye_fracs.append(eyes)
        assert 0 < eyes < 0.02  # both eyes present, and small
        assert (s.label == C["skin"]).mean() > 0.03
    required = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                "mouth", "u_lip", "l_lip", "hair", "hat", "neck", "cloth"]
    missing = [n for n in required if not seen[C[n]]]
    assert not missing, missing
    assert np.mean(eye_fracs) < 0.01


def test_synthetic_faces_sizes():
    for size in (32, 256):
        s = get_dataset("synthetic-faces", size=size, limit=1)[0]
        assert s.image.shape == (size, size, 3) and s.label.shape == (size, size)
    with pytest.raises(SairbenchError, match="256"):
        get_dataset("synthetic-faces", size=512)
    with pytest.raises(SairbenchError, match="split"):
        get_dataset("synthetic-faces", split="holdout")


def test_synthetic_faces_speed():
    import time

    from sairbench.data.synthetic_faces import render_face

    render_face(0, "train", 0, 64)
    t = time.perf_counter()
    n = 200
    for i in range(n):
        render_face(0, "train", i, 64)
    per_sample = (time.perf_counter() - t) / n
    assert per_sample < 0.01  # ~1.4 ms measured; generous bound for loaded CI machines


# ---------------------------------------------------------------- the dataset table


def test_dataset_table_is_the_one_source():
    from sairbench.data import DATASETS, PROTOCOL_DEFAULTS, DatasetRow, labelled_datasets, protocol_defaults

    assert DATASET_NAMES == tuple(DATASETS) == ("synthetic-faces", "celeba-hq", "ade20k", "folder", "photos")
    for name, row in DATASETS.items():
        assert isinstance(row, DatasetRow) and row.name == name
        assert protocol_defaults(name) == PROTOCOL_DEFAULTS[name] == {"size": row.defaults.size,
                                                                      "limit": row.defaults.limit, "fit": row.defaults.fit}
    assert protocol_defaults("synthetic-faces") == {"size": 64, "limit": 100, "fit": "center-crop"}
    assert protocol_defaults("celeba-hq") == {"size": 256, "limit": None, "fit": "center-crop"}
    assert DATASETS["celeba-hq"].folder_name == "CelebAMask-HQ" and DATASETS["ade20k"].folder_name == "ADEChallengeData2016"
    assert labelled_datasets() == ["synthetic-faces", "celeba-hq", "ade20k"]
    protocol_defaults("photos")["size"] = 1  # a copy: the table stays as it is
    assert DATASETS["photos"].defaults.size == 256 and PROTOCOL_DEFAULTS["photos"]["size"] == 256
    with pytest.raises(AttributeError):
        DATASETS["photos"].has_labels = True  # frozen
    with pytest.raises(SairbenchError, match="unknown dataset 'nope'; choose one of: synthetic-faces, celeba-hq"):
        protocol_defaults("nope")


def test_dataset_options_are_the_rows():
    assert len(get_dataset("synthetic-faces", size=16, length=3)) == 3
    with pytest.raises(SairbenchError, match="dataset 'celeba-hq' takes no option 'length'.$"):
        get_dataset("celeba-hq", length=3)
    with pytest.raises(SairbenchError, match="dataset 'synthetic-faces' takes no option 'classes'; it takes length, cache_size."):
        get_dataset("synthetic-faces", classes=["a"])


def test_folder_without_root_names_the_cli_flag(tmp_path, monkeypatch):
    from tests.helpers import PROTO, invoke

    monkeypatch.delenv("SAIRBENCH_DATA_ROOT", raising=False)
    with pytest.raises(SairbenchError, match="dataset 'folder' needs --data-root <folder of images>"):
        get_dataset("folder")
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO)
    with pytest.raises(SairbenchError, match="needs --data-root") as err:
        invoke(["run", "--protocol", str(proto), "--dataset", "folder", "--results", str(tmp_path / "results")])
    assert "--root" not in str(err.value)
