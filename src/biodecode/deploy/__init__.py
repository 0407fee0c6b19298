"""To the device: export, inference optimisation, quantisation, model cards, streaming decoding."""

from .card import model_card
from .export import ParityError, export_onnx, export_pt2, parity
from .optimize import FastEEGNet, fold_batchnorm, optimize_for_inference
from .predictor import OnnxPredictor, Predictor, TorchPredictor, load_predictor

__all__ = ["FastEEGNet", "OnnxPredictor", "ParityError", "Predictor", "TorchPredictor", "export_onnx",
           "export_pt2", "fold_batchnorm", "load_predictor", "model_card", "optimize_for_inference", "parity"]
