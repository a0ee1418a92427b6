"""Prompt templates and class-code -> phrase map for CLIP class-name embeddings.

The templates are a short subset of the ImageNet-style prompt set used for CLIP zero-shot
classification (and by MaskCLIP's ``prompt_engineering.py``); each class embedding is the
average of the per-template normalised text embeddings, renormalised.
"""

from __future__ import annotations

import re

from sairbench.errors import SairbenchError

# A short ImageNet-style set (CLIP zero-shot / MaskCLIP prompt engineering). Each has one "{}".
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a close-up photo of the {}.",
    "a blurry photo of the {}.",
    "a low resolution photo of the {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "there is a {} in the scene.",
    "this is the {} in the scene.",
)

# Dataset class codes whose literal text is not a natural phrase. CelebAMask-HQ codes follow the
# official annotation file names (e.g. ``00000_l_eye.png``); ADE20K names are already phrases.
CLASS_PHRASES: dict[str, str] = {
    # CelebAMask-HQ
    "background": "background",
    "skin": "face skin",
    "nose": "nose",
    "eye_g": "eyeglasses",
    "l_eye": "left eye",
    "r_eye": "right eye",
    "l_brow": "left eyebrow",
    "r_brow": "right eyebrow",
    "l_ear": "left ear",
    "r_ear": "right ear",
    "mouth": "mouth",
    "u_lip": "upper lip",
    "l_lip": "lower lip",
    "hair": "hair",
    "hat": "hat",
    "ear_r": "earring",
    "neck_l": "necklace",
    "neck": "neck",
    "cloth": "clothes",
    # common short codes in face / scene label sets
    "bg": "background",
    "eye": "eye",
    "eyes": "eyes",
    "brow": "eyebrow",
    "brows": "eyebrows",
    "lips": "lips",
    "teeth": "teeth",
    "tv": "television",
    "crt screen": "crt screen",
}


def class_phrase(code: str) -> str:
    """Natural phrase for a dataset class code: ``"l_eye" -> "left eye"``, ``"pool_table" ->
    "pool table"``, ``"building, edifice" -> "building"`` (first synonym), else the code itself."""
    key = code.strip()
    if key in CLASS_PHRASES:
        return CLASS_PHRASES[key]
    low = key.lower()
    if low in CLASS_PHRASES:
        return CLASS_PHRASES[low]
    if "," in key:  # ADE20K-style synonym lists: keep the first name
        key = key.split(",")[0].strip()
    key = re.sub(r"[_\-]+", " ", key)
    key = re.sub(r"\s+", " ", key).strip()
    return key or code


def build_prompts(class_name: str, templates: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """All prompts for one class: every template filled with the class phrase."""
    templates = PROMPT_TEMPLATES if templates is None else tuple(templates)
    phrase = class_phrase(class_name)
    out = []
    for t in templates:
        if "{}" not in t:
            raise SairbenchError(f"prompt template {t!r} has no '{{}}' placeholder")
        out.append(t.format(phrase))
    return out
