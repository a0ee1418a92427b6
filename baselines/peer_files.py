"""Where a peer's released file comes from (``--checkpoint NAME=PATH`` or ``$ENV``) and what
``sairbench models`` and ``meta.json`` say about it: shared by ``lama`` and ``coordfill``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from sairbench.errors import SairbenchError
from sairbench.registry import register_model
from sairbench_baselines.released import load_into, read_state_dict


def env_availability(env: str, download: str) -> Callable[[], tuple[bool, str]]:
    """``availability()`` of a peer whose released file is named by ``$env``."""
    def availability() -> tuple[bool, str]:
        path = os.environ.get(env)
        if not path:
            return False, f"needs the released weights: {download}, or set ${env} to that file"
        if not Path(path).is_file():
            return False, f"${env}={path} is not a file; {download}"
        return True, ""

    return availability


def load_peer(net: torch.nn.Module, name: str, conventions: dict[str, Any], checkpoint: str | None, pretrained: bool,
              env: str, download: str, layout: str, prefix: str = "") -> dict[str, Any]:
    """Load the released weights of peer ``name`` into ``net`` (``checkpoint``, else ``$env``;
    nothing with ``pretrained=False``) and return its ``checkpoint_info`` for ``meta.json``."""
    info = {"step": None, "model": {"name": name, "size": conventions},
            "train": {"dataset": None, "image_size": None, "seed": None}, "provenance": {"commit": None}}
    if not pretrained:
        info["model"]["size"]["file"] = "random weights"
        return info
    checkpoint = checkpoint or os.environ.get(env)
    if not checkpoint:
        raise SairbenchError(f"model {name} {env_availability(env, download)()[1]}.")
    sd, extras = read_state_dict(checkpoint, prefix)
    load_into(net, sd, str(checkpoint), layout)
    info["step"] = extras.get("global_step")
    info["model"]["size"]["file"] = str(checkpoint)
    return info


def register_peer(name: str, factory: Callable, env: str, download: str, description: str, needs: str) -> None:
    """Register peer ``name`` (kind "peer", available when ``$env`` names its released file)."""
    register_model(name, factory, description=description, needs=needs, kind="peer",
                   availability=env_availability(env, download))
