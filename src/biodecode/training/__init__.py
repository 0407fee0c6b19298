"""Training: a Lightning fit loop, augmentation, checkpoints, and the model file format."""

from .augment import Augmenter
from .checkpoint import load_model, save_model
from .config import TrainConfig
from .fit import FitResult, class_weights_for, fit, predict_proba, seed_everything

__all__ = ["Augmenter", "FitResult", "TrainConfig", "class_weights_for", "fit", "load_model", "predict_proba", "save_model", "seed_everything"]
