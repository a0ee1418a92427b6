"""Issue 14: say the domain. Checkpoints record what they were trained on, `sairbench models`
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


def test_models_shows_the_training_domain(capsys):
    invoke(["models"])
    out = capsys.readouterr().out
    assert "trained" in out and "synthetic-" in out  # the column wraps at 80 characters


def test_checkpoints_record_how_images_were_sampled(tmp_path):
    from sairbench.checkpoint import load_checkpoint

    invoke(["train", "liif", "--dataset", "photos", "--steps", "1", "--batch", "2", "--queries", "8",
            "--image-size", "32", "--threads", "1", "--out", str(tmp_path / "t")])
    data = load_checkpoint(tmp_path / "t" / "last.pt")["data"]
    assert data["dataset"] == "photos" and "random square crops" in data["sampling"]
