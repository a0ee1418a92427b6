"""The options of one evaluation job (``sairbench run``, ``cache build``), in one typed record.

:class:`RunOptions` is what the user typed: every field is one command-line flag, declared once
here with its help text (``sairbench.cli.flags.record_command`` turns the fields into the command's
flags, so a new option is one field plus the code that uses it). :meth:`RunOptions.resolve` fills
what the user left unset, once, from the environment, the protocol file and the dataset's
defaults, validates every value, and records where each value came from
(:data:`SOURCES`) in ``sources``; the resolved record is passed whole to the protocol kind that
runs it, and ``meta.json`` stores :meth:`RunOptions.record`.

A job that cannot honour a value the user set refuses it in one line
(:meth:`RunOptions.refuse_unhonoured`), never drops it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, List, Optional

from sairbench.errors import SairbenchError
from sairbench.pairs import MASK_DIR_ENV

SOURCES = ("flag", "env", "protocol", "dataset", "checkpoint", "default")


DATA_JOBS = ("run", "cache", "export")  # the jobs that read a protocol's images and masks


def flag(default: Any, help: str, *decls: str, jobs: tuple[str, ...] = DATA_JOBS) -> Any:
    """A record field that is a command-line flag of ``jobs`` (``decls``: its names, default --field-name)."""
    return field(default=default, metadata={"help": help, "decls": decls, "jobs": jobs})


@dataclass(frozen=True)
class RunOptions:
    """One evaluation job's options; None means "not given" until :meth:`resolve` fills it."""

    protocol: str = flag("liu2018-masks", "protocol name (protocols/NAME.toml) or path")  # (library: or a Protocol)
    dataset: Optional[str] = flag(None, "override the protocol's dataset (synthetic-faces, celeba-hq, ade20k, folder, "
                                        "photos)")
    data_root: Optional[str] = flag(None, "dataset folder in its official layout")
    model: Optional[List[str]] = flag(None, "models to run (repeatable); default: the protocol's", "--model", "-m",
                                      jobs=("run", "cache"))
    checkpoint: Optional[List[str]] = flag(None, "NAME=PATH: evaluate model NAME from this checkpoint; NAME may be a "
                                                 "variant like sair@step1500 (repeatable)", jobs=("run", "cache"))
    limit: Optional[int] = flag(None, "number of test images (default: the dataset's: 100 built-in, the whole test "
                                      "split of celeba-hq/ade20k)")
    size: Optional[int] = flag(None, "evaluation size (default: the dataset's: 64 built-in, 256 celeba-hq/ade20k)")
    per_bucket: Optional[int] = flag(None, "masks per hole-ratio bucket (default: the protocol's)")
    fit: Optional[str] = flag(None, "non-square images: center-crop or resize (default: the dataset's)")
    mask_dir: Optional[str] = flag(None, f"Liu et al. 2018 irregular mask folder (default: ${MASK_DIR_ENV})")
    name: Optional[str] = flag(None, "results folder name under --results", jobs=("run",))
    results: str = flag("results", "results root folder", jobs=("run",))
    resume: bool = flag(False, "continue an interrupted run of the same name, skipping finished rows", jobs=("run",))
    shard: str = flag("1/1", "i/n: run the i-th of n shards, 1-based; shards of one run share its folder",
                      jobs=("run",))
    train_missing: bool = flag(False, "train models whose checkpoint is missing, with the recorded commands",
                               jobs=("run",))
    self_ensemble: Optional[int] = flag(None, "implicit models answer as the mean over 1 (off), 2, 4 or 8 flips/"
                                              "transposes (default: each model's own; the photo models use 8)",
                                        jobs=("run",))
    out: Optional[str] = flag(None, "new output folder", "--out", "-o", jobs=("export",))
    device: str = flag("cpu", "cpu, cuda, cuda:1, ...", jobs=("run", "cache"))
    threads: Optional[int] = flag(None, "torch CPU threads (default: the cores this process may use; give 1 to each "
                                        "of several commands run side by side)", jobs=("run", "cache"))
    # filled by resolve()
    sources: dict = field(default_factory=dict, metadata={"resolved": True})
    proto: Any = field(default=None, metadata={"resolved": True})  # sairbench.protocol.Protocol
    ds_cfg: dict = field(default_factory=dict, metadata={"resolved": True})  # the dataset settings as used
    checkpoints: dict = field(default_factory=dict, metadata={"resolved": True})  # {name: path}
    progress: bool = field(default=True, metadata={"resolved": True})
    started: float = field(default=0.0, metadata={"resolved": True})  # time.perf_counter() when resolved
    one_time: dict = field(default_factory=dict, metadata={"resolved": True})  # seconds of one-time work by kind

    @classmethod
    def flags(cls, job: str) -> list:
        """The fields that are flags of ``job`` ("run", "cache" or "export"), in declaration order."""
        return [f for f in fields(cls) if job in f.metadata.get("jobs", ())]

    @property
    def shard_index(self) -> tuple[int, int]:
        """``--shard i/n`` as (i - 1, n)."""
        i, n = parse_shard(self.shard)
        return i - 1, n

    @property
    def models(self) -> list[str]:
        return list(self.model or [])

    @property
    def is_resolved(self) -> bool:
        return self.proto is not None

    def resolve(self, given: set[str] | None = None, progress: bool = True) -> "RunOptions":
        """This record with every unset value filled and validated, and ``sources`` recorded.

        ``given``: the fields the user set on the command line (default: those that differ from
        the field's default); they keep the source "flag"."""
        import time

        from sairbench import validate
        from sairbench.models.self_ensemble import check_self_ensemble
        from sairbench.pairs import dataset_settings
        from sairbench.protocol import Protocol, load_protocol

        started = time.perf_counter()
        if given is None:
            given = {f.name for f in fields(self) if "jobs" in f.metadata and getattr(self, f.name) != f.default}
        sources = {f.name: ("flag" if f.name in given else "default") for f in fields(self) if "jobs" in f.metadata}
        validate.device(self.device)
        check_self_ensemble(self.self_ensemble, "--self-ensemble")
        for key in ("limit", "size", "per_bucket", "threads"):
            validate.positive("--" + key.replace("_", "-"), getattr(self, key))
        if self.fit is not None:
            from sairbench.data import FITS

            if self.fit not in FITS:
                raise SairbenchError(f"--fit {self.fit!r}: use one of {', '.join(FITS)}.")
        self.shard_index  # noqa: B018  (validates --shard)
        shard, device = self.shard, self.device
        launched = launcher_shard()
        if launched is not None and "shard" not in given:  # torchrun / srun: each rank takes its chunks
            shard, sources["shard"] = launched, "env"
            if device.startswith("cuda") and ":" not in device:
                device, sources["device"] = f"cuda:{os.environ.get('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))}", "env"
                validate.device(device)
        if self.name is not None:
            validate.folder_name("--name", self.name)
        proto = self.protocol if isinstance(self.protocol, Protocol) else load_protocol(self.protocol)
        if self.per_bucket is None and proto.masks.per_bucket is not None:
            sources["per_bucket"] = "protocol"
        proto = proto.with_per_bucket(self.per_bucket)
        ds_cfg = dataset_settings(proto, name=self.dataset, root=self.data_root, limit=self.limit, size=self.size,
                                  fit=self.fit)
        for key, opt in (("name", "dataset"), ("root", "data_root"), ("limit", "limit"), ("size", "size"),
                         ("fit", "fit")):
            if opt not in given:
                sources[opt] = "dataset" if key in ds_cfg["defaults_from"] else (
                    "protocol" if getattr(proto.dataset, key) is not None else sources[opt])
        validate.threads_bound("--threads", self.threads)  # upper bounds (--size: dataset_settings)
        if "data_root" not in given and ds_cfg.get("root") is None and os.environ.get("SAIRBENCH_DATA_ROOT"):
            sources["data_root"] = "env"
        mask_dir = self.mask_dir
        if mask_dir is None and proto.masks.folder:
            mask_dir, sources["mask_dir"] = proto.masks.folder, "protocol"
        if mask_dir is None and os.environ.get(MASK_DIR_ENV):
            mask_dir, sources["mask_dir"] = os.environ[MASK_DIR_ENV], "env"
        model = list(self.model) if self.model else list(proto.models.names)
        if not self.model:
            sources["model"] = "protocol"
        if self.self_ensemble is None:
            sources["self_ensemble"] = "checkpoint"
        return replace(self, proto=proto, ds_cfg=ds_cfg, mask_dir=mask_dir, model=model, sources=sources,
                       shard=shard, device=device,
                       checkpoints=parse_checkpoints(self.checkpoint), progress=progress, started=started,
                       dataset=ds_cfg["name"], limit=ds_cfg.get("limit"), size=int(ds_cfg["size"]),
                       fit=ds_cfg.get("fit"), per_bucket=proto.masks.per_bucket)

    def elapsed(self) -> float:
        """Seconds since the job's options were resolved (the whole job so far)."""
        import time

        return time.perf_counter() - self.started

    def set_by_user(self) -> list[str]:
        """The options the user set (flag or environment), in declaration order."""
        return [k for k, s in self.sources.items() if s in ("flag", "env")]

    def refuse_unhonoured(self, honours: frozenset[str] | None, what: str, why: str = "") -> None:
        """One line naming the first option the user set that ``what`` cannot honour (None: all)."""
        if honours is None:
            return
        for key in self.set_by_user():
            if key not in honours and key not in ALWAYS_HONOURED:
                how, drop = "--" + key.replace("_", "-"), "drop --" + key.replace("_", "-")
                if self.sources[key] == "env":  # set by the environment, not typed
                    how, drop = {"mask_dir": ("$" + MASK_DIR_ENV, "unset " + MASK_DIR_ENV),
                                 "shard": ("several ranks (torchrun, srun)", "start one process")}.get(key, (how, drop))
                raise SairbenchError(f"{how} does not apply to {what}{' (' + why + ')' if why else ''}; {drop}.")

    def record(self) -> dict[str, Any]:
        """What meta.json keeps: every option's value and its source."""
        out = {}
        for f in fields(self):
            if "jobs" in f.metadata and f.name in self.sources:
                value = self.proto.name if f.name == "protocol" else getattr(self, f.name)
                out[f.name] = {"value": value, "source": self.sources[f.name]}
        return out


ALWAYS_HONOURED = frozenset({"protocol", "device", "threads"})


def launcher_shard() -> str | None:
    """``i/n`` of this process when a launcher started several (torchrun's RANK/WORLD_SIZE, SLURM's
    SLURM_PROCID/SLURM_NTASKS), else None: the ranks of one run share its folder and chunks."""
    for rank_env, world_env in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        rank, world = os.environ.get(rank_env), os.environ.get(world_env)
        if rank is None or world is None:
            continue
        try:
            r, w = int(rank), int(world)
        except ValueError:
            raise SairbenchError(f"${rank_env}={rank!r} / ${world_env}={world!r}: not whole numbers; "
                                 "start the ranks with torchrun or srun.") from None
        if w > 1:
            if not 0 <= r < w:
                raise SairbenchError(f"${rank_env}={r} is not in 0..{w - 1} (${world_env}={w}); start the ranks "
                                     "with torchrun or srun.")
            return f"{r + 1}/{w}"
    return None


def parse_checkpoints(items: list[str] | None) -> dict[str, str]:
    """``--checkpoint NAME=PATH`` options as {name: path}; each a one-line error when malformed."""
    from pathlib import Path

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not Path(path).is_file():
            raise SairbenchError(f"--checkpoint '{item}' is not NAME=PATH of an existing file (e.g. sair=runs/sair/last.pt).")
        out[key] = path
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """``'i/n'`` with 1 <= i <= n (1-based, like Jest and Playwright) -> (i, n)."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise SairbenchError(f"--shard '{text}' is not i/n (e.g. 1/2 and 2/2 for two shards).") from None
    if i == 0 and n > 0:
        raise SairbenchError(f"--shard {text}: shards are numbered from 1; use 1/{n} .. {n}/{n}.")
    if not 1 <= i <= n:
        raise SairbenchError(f"--shard '{text}' needs 1 <= i <= n (e.g. 1/2 and 2/2 for two shards).")
    return i, n
