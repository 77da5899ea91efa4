"""Graph passes: each one is numerically the identity on the eval-mode model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from pace_edge.export.passes import (  # noqa: E402
    DeployPACE,
    FixedPool1d,
    count_modules,
    deploy_model,
    drop_dropout,
    fold_batchnorms,
    fold_conv_bn,
    freeze_pool,
    to_deploy,
)
from pace_edge.model import PACE, AdaptivePool1d, preset  # noqa: E402

TOL = 1e-5


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so folding really does work."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> PACE:
    torch.manual_seed(0)
    return randomize_bn(PACE(preset("tiny", 3, dropout=0.3)))


def max_diff(a: nn.Module, b: nn.Module, length: int, n: int = 8) -> float:
    x = torch.randn(n, length, generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


@pytest.mark.parametrize("groups", [1, 8])
def test_fold_conv_bn_is_exact(groups: int) -> None:
    torch.manual_seed(1)
    conv = nn.Conv1d(8, 8, 5, padding="same", groups=groups)
    bn = randomize_bn(nn.BatchNorm1d(8, eps=1e-3))
    fused = fold_conv_bn(conv, bn)
    x = torch.randn(4, 8, 50)
    with torch.no_grad():
        assert float((fused(x) - bn(conv(x))).abs().max()) <= TOL
    assert fused.groups == groups and fused.bias is not None


def test_fold_conv_bn_without_conv_bias() -> None:
    conv = nn.Conv1d(1, 4, 16, stride=16, bias=False)
    bn = randomize_bn(nn.BatchNorm1d(4))
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        assert float((fold_conv_bn(conv, bn)(x) - bn(conv(x))).abs().max()) <= TOL


def test_fold_batchnorms(model: PACE) -> None:
    folded = fold_batchnorms(model)
    assert count_modules(folded, nn.modules.batchnorm._BatchNorm) == 0
    assert count_modules(model, nn.BatchNorm1d) == 1 + 2 * model.config.depth  # untouched
    for length in (900, 1024):
        assert max_diff(model, folded, length) <= TOL


def test_drop_dropout(model: PACE) -> None:
    dropped = drop_dropout(model)
    assert count_modules(dropped, nn.Dropout) == 0
    assert count_modules(model, nn.Dropout) == 1
    dropped.train()  # without dropout, training mode only differs by BatchNorm batch stats
    assert max_diff(model, dropped.eval(), 900) <= TOL


def test_to_deploy_refuses_unfolded(model: PACE) -> None:
    with pytest.raises(ValueError, match="BatchNorm"):
        to_deploy(model)


@pytest.mark.parametrize("length", [900, 1024, 256, 300])
def test_deploy_model_is_identical(model: PACE, length: int) -> None:
    deploy = deploy_model(model)
    assert isinstance(deploy, DeployPACE)
    assert count_modules(deploy, (nn.modules.batchnorm._BatchNorm, nn.Dropout)) == 0
    assert max_diff(model, deploy, length) <= TOL
    frozen = deploy_model(model, length)
    assert isinstance(frozen.pool, FixedPool1d)
    assert max_diff(model, frozen, length) <= TOL


def test_deploy_blocks_keep_dw_and_pw_apart(model: PACE) -> None:
    deploy = deploy_model(model)
    dim = model.config.dim
    for block in deploy.blocks:
        assert block.dw.groups == dim and block.dw.kernel_size == (model.config.kernel,)
        assert block.pw.kernel_size == (1,) and block.pw.groups == 1
        assert block.dw.bias is not None and block.pw.bias is not None


@pytest.mark.parametrize("length", [900, 1024, 256, 700])
def test_fixed_pool_matches_adaptive(length: int) -> None:
    x = torch.randn(3, 5, length)
    assert torch.equal(FixedPool1d(length, 256)(x), AdaptivePool1d(256)(x))


def test_freeze_pool_rejects_other_lengths(model: PACE) -> None:
    frozen = freeze_pool(deploy_model(model), 900)
    with pytest.raises(ValueError, match="900"):
        frozen(torch.zeros(1, 1024))
