"""Parameter and multiply-accumulate (MAC) counts of a model for an input shape."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _lstm_macs(module: nn.LSTM, inp: tuple[torch.Tensor, ...], store: list[int]) -> None:
    x = inp[0]
    steps = x.shape[1] if module.batch_first else x.shape[0]
    batch = x.shape[0] if module.batch_first else x.shape[1]
    dirs = 2 if module.bidirectional else 1
    h = module.hidden_size
    total = 0
    for layer in range(module.num_layers):
        i = module.input_size if layer == 0 else h * dirs
        total += dirs * steps * 4 * h * (i + h)  # four gates: input and recurrent matmuls
    store.append(total * batch)


def count_macs(model: nn.Module, n_channels: int, n_times: int) -> int:
    """MACs of one forward pass on a single ``(1, n_channels, n_times)`` window.

    Matrix products and convolutions are counted by PyTorch's FlopCounterMode (FLOPs / 2); LSTMs,
    which it does not see, by the standard four-gate count. Element-wise work is not counted.
    """
    m = copy.deepcopy(model).eval()
    lstm_store: list[int] = []
    hooks = [mod.register_forward_pre_hook(lambda mod, inp: _lstm_macs(mod, inp, lstm_store))
             for mod in m.modules() if isinstance(mod, nn.LSTM)]
    x = torch.zeros(1, n_channels, n_times)
    # train-mode attention takes the decomposed path FlopCounterMode can see; dropout does not matter
    m.train()
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        m(x)
    for hk in hooks:
        hk.remove()
    return counter.get_total_flops() // 2 + sum(lstm_store)
