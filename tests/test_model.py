"""The PACE network, its presets and the exact input pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pace_edge.errors import PaceEdgeError
from pace_edge.model import PRESETS, ModelConfig, preset
from pace_edge.model.pace import PACE, build_model
from pace_edge.model.pooling import AdaptivePool1d, pool_matrix, pool_windows


@pytest.mark.parametrize("length", [100, 255, 256, 300, 512, 900, 1000, 1023, 1024, 2048, 3001])
def test_pool_matches_adaptive_avg_pool(length: int) -> None:
    x = torch.randn(4, 3, length, generator=torch.Generator().manual_seed(length))
    ours = AdaptivePool1d(256)(x)
    ref = F.adaptive_avg_pool1d(x, 256)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    if length % 256 == 0:
        assert torch.equal(ours, ref)  # avg_pool path is bit-identical


def test_pool_windows_cover_every_input() -> None:
    windows = pool_windows(900, 256)
    assert windows[0][0] == 0 and windows[-1][1] == 900
    covered = np.zeros(900, dtype=int)
    for s, e in windows:
        covered[s:e] += 1
    assert covered.min() >= 1
    np.testing.assert_allclose(pool_matrix(900, 256).sum(axis=0), 1.0, rtol=1e-6)


def test_presets_build_and_run_any_length() -> None:
    for name in PRESETS:
        model = PACE(preset(name, 3)).eval()
        for length in (256, 900):
            assert model(torch.randn(2, length)).shape == (2, 3)
    paper = preset("paper", 3)
    assert (paper.dim, paper.depth, paper.kernel, paper.patch, paper.pool_dim) == (
        1024, 4, 9, 16, 256)


def test_block_structure_is_published_pace() -> None:
    model = PACE(preset("tiny", 4))
    block = model.blocks[0]
    assert block.dw.groups == block.dw.in_channels == 32 and block.dw.kernel_size == (9,)
    assert block.pw.kernel_size == (1,)
    assert model.embed.kernel_size == model.embed.stride == (16,)
    assert model.head.out_features == 4


def test_config_validation() -> None:
    with pytest.raises(PaceEdgeError, match="unknown preset"):
        preset("huge", 3)
    with pytest.raises(PaceEdgeError, match="at least 2 classes"):
        preset("tiny", 1)
    with pytest.raises(PaceEdgeError, match="multiple of patch"):
        preset("tiny", 3, pool_dim=250)
    with pytest.raises(PaceEdgeError, match="unknown model config"):
        ModelConfig.from_dict({"num_classes": 3, "width": 5})
    assert ModelConfig.from_dict(preset("small", 3).to_dict()) == preset("small", 3)


def test_build_model_rejects_mismatched_weights() -> None:
    small = PACE(preset("tiny", 3))
    weights = {k: v.numpy() for k, v in small.state_dict().items()}
    rebuilt = build_model(preset("tiny", 3), weights)
    x = torch.randn(2, 300)
    torch.testing.assert_close(rebuilt(x), small.eval()(x))
    with pytest.raises(PaceEdgeError, match="do not match"):
        build_model(preset("small", 3), weights)
