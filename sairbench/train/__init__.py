"""Training: named stages (``semantic``, ``sir``, the colour stage of every preset), one loop.

``train(make_config('liif', steps=100))`` trains and returns the checkpoint path; the CLI and the
shipped recipes (``sairbench.shipped``) both go through :func:`make_config` and :func:`train`.
"""

from sairbench.train.batches import StepBatches, batch_for_step, step_batches
from sairbench.train.config import Schedule, TrainConfig, make_config
from sairbench.train.loop import load_init_weights, train
from sairbench.train.stages import STAGES, build_for_training, recipe_of

__all__ = ["STAGES", "Schedule", "StepBatches", "TrainConfig", "batch_for_step", "build_for_training",
           "load_init_weights", "make_config", "recipe_of", "step_batches", "train"]
