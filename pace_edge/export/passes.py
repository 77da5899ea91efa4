"""Graph passes that turn a trained :class:`~pace_edge.model.PACE` into its deployable form.

Each pass is a small pure function: it returns a new module and leaves its argument untouched.
Together (:func:`deploy_model`) they give a :class:`DeployPACE` whose graph is

    pool -> embed conv(+bias) -> GELU -> depth x [dw conv(+bias) -> GELU -> pw conv(+bias)
    -> Add -> GELU] -> mean -> Linear

with every BatchNorm folded exactly into the preceding convolution and dropout removed. The
depthwise and pointwise convolutions stay separate: the GELU between them makes merging them
wrong.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..model.pace import PACE
from ..model.pooling import AdaptivePool1d, pool_matrix

__all__ = [
    "DeployBlock",
    "DeployPACE",
    "FixedPool1d",
    "count_modules",
    "deploy_model",
    "drop_dropout",
    "fold_batchnorms",
    "fold_conv_bn",
    "freeze_pool",
    "to_deploy",
]


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d:
    """A new ``Conv1d`` (with bias) computing ``bn(conv(x))`` for ``bn`` in eval mode.

    ``w' = w * g / sqrt(var + eps)`` per output channel, ``b' = (b - mean) * g / sqrt(var + eps)
    + beta``. Computed in float64, stored in the conv's dtype.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"BatchNorm has {bn.num_features} features, conv {conv.out_channels} out channels"
        )
    dtype = conv.weight.dtype
    w = conv.weight.double()
    b = conv.bias.double() if conv.bias is not None else torch.zeros(conv.out_channels).double()
    gamma = bn.weight.double() if bn.affine else torch.ones_like(bn.running_var).double()
    beta = bn.bias.double() if bn.affine else torch.zeros_like(bn.running_mean).double()
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    fused = nn.Conv1d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=dtype)
    fused.weight.copy_((w * scale.view(-1, 1, 1)).to(dtype))
    fused.bias.copy_(((b - bn.running_mean.double()) * scale + beta).to(dtype))
    return fused.eval()


def fold_batchnorms(model: PACE) -> PACE:
    """A copy of ``model`` with embed/dw/pw BatchNorms folded into their convs (BN -> Identity)."""
    out = copy.deepcopy(model).eval()
    out.embed = fold_conv_bn(out.embed, out.embed_bn)
    out.embed_bn = nn.Identity()
    for block in out.blocks:
        block.dw = fold_conv_bn(block.dw, block.dw_bn)
        block.dw_bn = nn.Identity()
        block.pw = fold_conv_bn(block.pw, block.pw_bn)
        block.pw_bn = nn.Identity()
    return out


def drop_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``Dropout`` module replaced by ``Identity``."""
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for attr, sub in list(parent.named_children()):
            if isinstance(sub, nn.modules.dropout._DropoutNd):
                setattr(parent, attr, nn.Identity())
    return out


class FixedPool1d(nn.Module):
    """:class:`AdaptivePool1d` for one known input length, its averaging matrix a buffer.

    Same arithmetic as the adaptive pool (identity, ``avg_pool1d`` or ``MatMul`` with
    :func:`~pace_edge.model.pooling.pool_matrix`), but nothing is created during export.
    """

    def __init__(self, length: int, out: int) -> None:
        super().__init__()
        self.length = length
        self.out = out
        matrix = None
        if length != out and length % out:
            matrix = torch.from_numpy(pool_matrix(length, out))
        self.register_buffer("matrix", matrix, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, L)
        if x.shape[-1] != self.length:
            raise ValueError(f"this pool takes {self.length} points, got {x.shape[-1]}")
        if self.matrix is not None:
            return torch.matmul(x, self.matrix)
        if self.length == self.out:
            return x
        k = self.length // self.out
        return nn.functional.avg_pool1d(x, kernel_size=k, stride=k)

    def extra_repr(self) -> str:
        return f"length={self.length}, out={self.out}"


class DeployBlock(nn.Module):
    """Mixer block without BatchNorm: dw conv -> GELU -> pw conv -> + x -> GELU."""

    def __init__(self, dw: nn.Conv1d, pw: nn.Conv1d) -> None:
        super().__init__()
        self.dw = dw
        self.pw = pw
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pw(self.act(self.dw(x))) + x)


class DeployPACE(nn.Module):
    """The inference graph of a folded PACE: input ``spectrum (N, L)``, output ``logits``."""

    def __init__(
        self,
        pool: AdaptivePool1d | FixedPool1d,
        embed: nn.Conv1d,
        blocks: list[DeployBlock],
        head: nn.Linear,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.embed = embed
        self.act = nn.GELU()
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        x = self.pool(spectrum.unsqueeze(1))
        x = self.act(self.embed(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=-1))


def freeze_pool(model: DeployPACE, length: int) -> DeployPACE:
    """A copy of ``model`` whose input pool is a :class:`FixedPool1d` for ``length`` points."""
    out = copy.deepcopy(model)
    out.pool = FixedPool1d(length, model.pool.out)
    return out


def to_deploy(model: PACE) -> DeployPACE:
    """Rebuild a BN-folded, dropout-free PACE as a :class:`DeployPACE` (copies the modules)."""
    m = copy.deepcopy(model)
    leftovers = [
        n
        for n, mod in m.named_modules()
        if isinstance(mod, nn.modules.batchnorm._BatchNorm | nn.modules.dropout._DropoutNd)
    ]
    if leftovers:
        raise ValueError(f"fold BatchNorm and drop dropout first; still present: {leftovers}")
    blocks = [DeployBlock(b.dw, b.pw) for b in m.blocks]
    return DeployPACE(AdaptivePool1d(m.pool.out), m.embed, blocks, m.head).eval()


def deploy_model(model: PACE, length: int | None = None) -> DeployPACE:
    """All passes: fold BatchNorms, drop dropout, rebuild as :class:`DeployPACE` (eval mode).

    With ``length``, the input pool is also frozen to that input length (for export).
    """
    deploy = to_deploy(drop_dropout(fold_batchnorms(model.eval())))
    return freeze_pool(deploy, length).eval() if length is not None else deploy


def count_modules(model: nn.Module, kind: type | tuple[type, ...]) -> int:
    """How many submodules of ``model`` are instances of ``kind``."""
    return sum(isinstance(m, kind) for m in model.modules())
