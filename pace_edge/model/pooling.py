"""Exact, exportable adaptive average pooling along the spectral axis.

``F.adaptive_avg_pool1d`` averages input window ``[floor(i*L/P), ceil((i+1)*L/P))`` for output
``i``. torch.onnx refuses it when ``L`` is not a multiple of ``P``; expressing the same windows
as a fixed ``(L, P)`` averaging matrix gives one ``MatMul`` that every runtime accepts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def pool_windows(length: int, out: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` input windows adaptive average pooling uses for each output."""
    if length < 1 or out < 1:
        raise ValueError(f"pooling needs positive sizes, got {length} -> {out}")
    return [((i * length) // out, -((-(i + 1) * length) // out)) for i in range(out)]


def pool_matrix(length: int, out: int) -> np.ndarray:
    """The ``(length, out)`` float32 matrix ``W`` with ``x @ W == adaptive_avg_pool1d(x, out)``."""
    w = np.zeros((length, out), dtype=np.float32)
    for i, (start, end) in enumerate(pool_windows(length, out)):
        w[start:end, i] = 1.0 / (end - start)
    return w


class AdaptivePool1d(nn.Module):
    """Adaptive average pool to ``out`` points, exact and ONNX-exportable for any length.

    Lengths that are a multiple of ``out`` use ``avg_pool1d`` (bit-identical); others use the
    averaging matrix, built once per input length.
    """

    def __init__(self, out: int) -> None:
        super().__init__()
        self.out = out
        self._matrices: dict[int, torch.Tensor] = {}

    def _matrix(self, length: int, ref: torch.Tensor) -> torch.Tensor:
        m = self._matrices.get(length)
        if m is None or m.device != ref.device or m.dtype != ref.dtype:
            m = torch.from_numpy(pool_matrix(length, self.out)).to(ref.device, ref.dtype)
            self._matrices[length] = m
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, L)
        length = int(x.shape[-1])
        if length == self.out:
            return x
        if length % self.out == 0:
            k = length // self.out
            return nn.functional.avg_pool1d(x, kernel_size=k, stride=k)
        return torch.matmul(x, self._matrix(length, x))

    def extra_repr(self) -> str:
        return f"out={self.out}"
