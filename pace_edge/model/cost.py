"""What a PACE architecture costs: multiply-adds per spectrum, parameters, INT8 weight bytes.

Counted from the config alone (no torch), layer by layer as the network and its export run:

* input pool to ``pool_dim`` points: a fixed ``(L, pool_dim)`` matrix product when ``L`` is not
  a multiple of ``pool_dim`` (how the export expresses it), otherwise ``L`` window additions;
* patch embedding: ``dim * patch`` per token, ``pool_dim / patch`` tokens;
* each block: depthwise ``dim * kernel`` and pointwise ``dim * dim`` per token;
* head: ``dim * classes``. Biases, BatchNorm (folded at export), GELU and the mean over
  tokens are not multiply-adds and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig


@dataclass(frozen=True)
class ModelCost:
    """Multiply-adds per spectrum, trainable parameters and INT8 weight bytes of one config."""

    multiply_adds: int
    parameters: int

    @property
    def int8_weight_bytes(self) -> int:
        """One byte per parameter: the size of an all-INT8 build's weights (an export that
        keeps some layers float is larger; its manifest lists the real file sizes)."""
        return self.parameters

    def to_dict(self) -> dict[str, int]:
        return {"multiply_adds": self.multiply_adds, "parameters": self.parameters,
                "int8_weight_bytes": self.int8_weight_bytes}


def pool_multiply_adds(length: int, pool_dim: int) -> int:
    """The input pool's multiply-adds for spectra of ``length`` points."""
    return length if length % pool_dim == 0 else length * pool_dim


def multiply_adds(config: ModelConfig, length: int) -> int:
    """Multiply-adds of one forward pass on one spectrum of ``length`` points."""
    c = config
    tokens = c.pool_dim // c.patch
    block = tokens * (c.dim * c.kernel + c.dim * c.dim)
    return (pool_multiply_adds(length, c.pool_dim) + tokens * c.dim * c.patch
            + c.depth * block + c.dim * c.num_classes)


def parameters(config: ModelConfig) -> int:
    """Trainable parameters (weights, biases, BatchNorm scales and shifts; not the running
    statistics)."""
    c = config
    embed = c.dim * c.patch + c.dim + 2 * c.dim
    block = (c.dim * c.kernel + c.dim + 2 * c.dim) + (c.dim * c.dim + c.dim + 2 * c.dim)
    head = c.dim * c.num_classes + c.num_classes
    return embed + c.depth * block + head


def model_cost(config: ModelConfig, length: int) -> ModelCost:
    """:class:`ModelCost` of ``config`` on spectra of ``length`` points."""
    return ModelCost(multiply_adds(config, length), parameters(config))


def human(n: float) -> str:
    """``68.2 M``, ``76 k``, ``3.7 k``: three significant figures with a k/M/G suffix."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.3g} {suffix}" if v < 100 else f"{v:.0f} {suffix}"
    return f"{n:g}"


def human_bytes(n: float) -> str:
    """``4.28 MB``, ``76 kB``, ``363 B``."""
    for suffix, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n:.0f} B"


__all__ = ["ModelCost", "human", "human_bytes", "model_cost", "multiply_adds", "parameters",
           "pool_multiply_adds"]
