"""Preprocessing: pure functions on arrays and a composable, serialisable :class:`Pipeline`."""

from .filters import CausalFilter, apply_sos, bandpass, design_bandpass, design_notch, notch, resample
from .normalize import ExponentialMovingStandardizer, common_average, exponential_moving_standardize, standardize
from .pipeline import (BandPass, CommonAverage, Envelope, ExponentialMovingStandardize, Notch, Pick, Pipeline, RRChannel,
                       Rectify, Resample, Scale, Standardize, Step, StreamPipeline, describe_step)

__all__ = [
    "CausalFilter", "apply_sos", "bandpass", "design_bandpass", "design_notch", "notch", "resample",
    "ExponentialMovingStandardizer", "common_average", "exponential_moving_standardize", "standardize",
    "BandPass", "CommonAverage", "Envelope", "Rectify", "ExponentialMovingStandardize", "Notch", "Pick", "Pipeline", "RRChannel", "Resample",
    "Scale", "Standardize", "Step", "StreamPipeline", "describe_step",
]
