"""The PACE network (Lu et al., Anal. Chem. 2024, 96, 2866), as published.

spectrum -> adaptive average pool to ``pool_dim`` -> patch embedding
Conv1d(1, dim, k=patch, stride=patch) + BN + GELU -> dropout -> ``depth`` x
[depthwise Conv1d(k, groups=dim, same) + BN + GELU -> pointwise Conv1d(1) + BN -> + input -> GELU]
-> global average pool -> Linear.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import BundleError
from .config import ModelConfig
from .pooling import AdaptivePool1d


class MixerBlock(nn.Module):
    """Depthwise conv + BN + GELU, then pointwise conv + BN, residual add, GELU."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, groups=dim, padding="same")
        self.dw_bn = nn.BatchNorm1d(dim)
        self.pw = nn.Conv1d(dim, dim, 1)
        self.pw_bn = nn.BatchNorm1d(dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.dw_bn(self.dw(x)))
        return self.act(self.pw_bn(self.pw(y)) + x)


class PACE(nn.Module):
    """Patch-based convolutional encoder for 1-D spectra. Input ``(N, L)`` or ``(N, 1, L)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        self.pool = AdaptivePool1d(c.pool_dim)
        self.embed = nn.Conv1d(1, c.dim, c.patch, stride=c.patch)
        self.embed_bn = nn.BatchNorm1d(c.dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(MixerBlock(c.dim, c.kernel) for _ in range(c.depth))
        self.head = nn.Linear(c.dim, c.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``(N, dim)`` before the classifier head."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = self.pool(x)
        x = self.drop(self.act(self.embed_bn(self.embed(x))))
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


TRUST_PREFIX = "trust."  # the "unknown" detector's arrays, stored with the weights


def build_model(config: ModelConfig, weights: dict[str, Any] | None = None) -> PACE:
    """A PACE network for ``config``, loaded with ``weights`` (name -> array) when given.

    Returned in eval mode. Weights must match the architecture exactly; arrays named
    ``trust.*`` (the detector's, see :mod:`pace_edge.trust`) are not the network's.
    """
    model = PACE(config)
    if weights is not None:
        state = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()
                 if not k.startswith(TRUST_PREFIX)}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0:2]
            raise BundleError(f"weights do not match the architecture: {' '.join(first)}") from exc
    return model.eval()
