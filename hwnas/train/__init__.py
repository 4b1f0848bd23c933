"""`hwnas train`: retrain a found architecture from scratch with a standard recipe.

`recipe(space, kind, **overrides)` gives the `TrainConfig`, `fit_to_data`
adapts the architecture to the data, `train` runs (resumably, under
torchrun if launched so) and returns a `TrainResult`.
"""

from __future__ import annotations

from hwnas.train.loop import CHECKPOINT, TrainResult, train
from hwnas.train.network import exportable_state, fit_to_data, training_network
from hwnas.train.recipe import RECIPES, TrainConfig, recipe
from hwnas.train.steps import evaluate, train_steps

__all__ = ["CHECKPOINT", "RECIPES", "TrainConfig", "TrainResult", "evaluate", "exportable_state",
           "fit_to_data", "recipe", "train", "train_steps", "training_network"]
