"""Models: every one maps ``(batch, n_channels, n_times)`` float32 to ``(batch, n_classes)`` logits."""

from .base import BiosignalModel, ModelInfo
from .complexity import count_macs, count_parameters
from .registry import create_model, describe_model, list_models, model_class, model_defaults, register_model

__all__ = ["BiosignalModel", "ModelInfo", "count_macs", "count_parameters", "create_model", "describe_model",
           "list_models", "model_class", "model_defaults", "register_model"]
