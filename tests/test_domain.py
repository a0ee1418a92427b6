"""Say the domain. Checkpoints record what they were trained on, `sairbench models`
shows it, `inpaint` says when a photograph is far from a model's domain, and with no model it
uses the shipped photo model (Telea when none is shipped)."""

import numpy as np
import pytest
from PIL import Image

from sairbench.domain import PHOTO_MODELS, default_photo_model, shipped_domain
from tests.helpers import invoke


@pytest.fixture()
def photo(tmp_path):
    from skimage import data

    img = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()[::2, ::2]).save(img)  # 256x256
    m = np.zeros((256, 256), np.uint8)
    m[100:160, 90:170] = 255
    mask = tmp_path / "mask.png"
    Image.fromarray(m).save(mask)
    return img, mask


def test_a_faces_model_on_a_photograph_says_its_domain(photo, tmp_path, capsys):
    img, mask = photo
    invoke(["inpaint", "liif", str(img), str(mask), "-o", str(tmp_path / "o.png"), "--threads", "1"])
    out = " ".join(capsys.readouterr().out.split())
    assert "was trained on synthetic-faces 64x64 images" in out and "photograph of 256x256" in out


def test_no_model_means_the_photo_model(photo, tmp_path, capsys):
    img, mask = photo
    invoke(["inpaint", str(img), str(mask), "-o", str(tmp_path / "o.png"), "--threads", "1"])
    out = " ".join(capsys.readouterr().out.split())
    expected = default_photo_model()
    assert f"model: {expected} " in out and "was trained on" not in out
    if any((shipped_domain(n) or {}).get("dataset") == "photos" for n in PHOTO_MODELS):
        assert expected in PHOTO_MODELS
    else:
        assert expected == "telea"
    assert (tmp_path / "o.png").is_file()


def test_models_shows_the_training_domain(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    invoke(["models"])
    out = capsys.readouterr().out
    assert "trained" in out and "synthetic-faces 64x64" in out
    photo_rows = [line for line in out.splitlines() if "@photos" in line]
    assert photo_rows and all("photos 64x64" in line for line in photo_rows)  # the shipped photo models


def test_photo_variants_are_described():
    from sairbench.shipped import variant_text

    text = variant_text({"prefill": "smooth", "input_residual": True, "upsample": "resize-conv"})
    assert text == "sees a biharmonic fill of the hole and predicts a correction to it, resize-conv upsampling"
    assert variant_text({}) == "the paper's model"
    assert variant_text({"self_ensemble": 8}) == "answers as the mean over 8 flips/transposes"


def test_checkpoints_record_how_images_were_sampled(tmp_path):
    from sairbench.checkpoint import load_checkpoint

    invoke(["train", "liif", "--dataset", "photos", "--steps", "1", "--batch", "2", "--queries", "8",
            "--image-size", "32", "--threads", "1", "--out", str(tmp_path / "t")])
    data = load_checkpoint(tmp_path / "t" / "last.pt")["data"]
    assert data["dataset"] == "photos" and "random square crops" in data["sampling"]


def test_photo_corpus_index_is_checked(tmp_path):
    """The Debian corpus is read only through its index, each file checked against its sha256."""
    import hashlib
    import json

    from sairbench.data.photo_corpus import indexed_photos
    from sairbench.errors import SairbenchError

    img = tmp_path / "pkg" / "a.jpg"
    img.parent.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    entry = {"name": "debian-a", "file": "pkg/a.jpg", "package": "pkg", "version": "1",
             "sha256": hashlib.sha256(img.read_bytes()).hexdigest(), "licence": "GPL-2+"}
    (tmp_path / "index.json").write_text(json.dumps({"photos": [entry]}))
    assert [(n, pkg) for n, _, pkg in indexed_photos(tmp_path)] == [("debian-a", "pkg")]
    img.write_bytes(img.read_bytes() + b"x")
    with pytest.raises(SairbenchError, match="changed since it was indexed"):
        indexed_photos(tmp_path)


def test_validation_photographs_come_from_the_validation_packages_alone():
    from sairbench.data.photo_corpus import VALIDATION_PACKAGES
    from sairbench.data.photos import split_of

    names = [f"debian-photo{i}" for i in range(40)]
    plain = [split_of(n, "mate-backgrounds") for n in names]
    val = [split_of(n, VALIDATION_PACKAGES[0]) for n in names]
    assert "val" not in plain and {"train", "test"} == set(plain)
    # the test quarter is the same whatever the package; the rest of a validation package is 'val'
    assert [a == "test" for a in plain] == [b == "test" for b in val] and set(val) == {"test", "val"}


def test_the_validation_split_without_the_corpus_says_how_to_get_it(monkeypatch):
    from sairbench.data import get_dataset
    from sairbench.errors import SairbenchError

    monkeypatch.delenv("SAIRBENCH_PHOTOS_DIR", raising=False)
    with pytest.raises(SairbenchError, match="sairbench photos fetch"):
        get_dataset("photos", split="val", size=32)


def test_photos_are_split_by_photograph():
    from sairbench.data import get_dataset

    train, test = get_dataset("photos", split="train", size=32), get_dataset("photos", split="test", size=32)
    base = {n.split("@")[0] for n in (train.sample_name(i) for i in range(0, len(train), 997))}
    held = {test.sample_name(i).split("@")[0] for i in range(len(test))}
    assert base and held and not base & held
    a, b = train[5].image, train[5].image
    assert np.array_equal(a, b)  # a crop depends only on (seed, index)


def test_corpus_licences_match_their_copyright_entries(tmp_path):
    """Each file's licence comes from the Debian copyright stanza naming it (also under a sub-folder)."""
    from sairbench.data.photo_corpus import _licence_of, _licences, fetch_debian_photos
    from sairbench.errors import SairbenchError

    cp = tmp_path / "copyright"
    cp.write_text("Files: *\nLicense: GPL-2+\n\nFiles: 16.04/free_by_A.jpg\nCopyright: A\nLicense: CC-BY-SA-4.0\n\n"
                  "Files: 16.04/sea_by_B.jpg\nLicense: CC0-1.0\n")
    lic = _licences(cp)
    assert _licence_of("free_by_A.jpg", lic) == "CC-BY-SA-4.0"
    assert _licence_of("sea_by_B.jpg", lic) == "CC0-1.0"
    assert _licence_of("other.jpg", lic) == "GPL-2+"
    with pytest.raises(SairbenchError, match="no photographs are listed for package 'nope'"):
        fetch_debian_photos(tmp_path / "c", ["nope"])
