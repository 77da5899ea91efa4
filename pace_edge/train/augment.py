"""Training-time augmentations of spectra (the PACE paper's: noise, blur, scaling, masking).

Each acts on a batch ``(N, L)`` with a seeded ``torch.Generator`` and returns a new tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_noise(x: torch.Tensor, g: torch.Generator, scale: float = 0.02) -> torch.Tensor:
    """Add white noise of ``scale`` × each spectrum's standard deviation."""
    sd = x.std(dim=1, keepdim=True)
    return x + torch.randn(x.shape, generator=g, device=x.device) * scale * sd


def blur(x: torch.Tensor, g: torch.Generator, max_sigma: float = 1.5) -> torch.Tensor:
    """Gaussian blur with a random width in ``[0, max_sigma]`` pixels, per batch."""
    sigma = float(torch.rand(1, generator=g)) * max_sigma
    if sigma < 0.3:
        return x
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    padded = F.pad(x.unsqueeze(1), (radius, radius), mode="replicate")
    return F.conv1d(padded, kernel).squeeze(1)


def intensity_scale(x: torch.Tensor, g: torch.Generator, spread: float = 0.1) -> torch.Tensor:
    """Multiply each spectrum by a factor uniform in ``[1 - spread, 1 + spread]``."""
    factor = 1 + (torch.rand(x.shape[0], 1, generator=g, device=x.device) * 2 - 1) * spread
    return x * factor


def mask(
    x: torch.Tensor, g: torch.Generator, p: float = 0.5, max_frac: float = 0.05
) -> torch.Tensor:
    """With probability ``p`` per spectrum, zero one random window of up to ``max_frac``·L."""
    n, length = x.shape
    width_max = max(1, int(max_frac * length))
    out = x.clone()
    hit = torch.rand(n, generator=g) < p
    widths = torch.randint(1, width_max + 1, (n,), generator=g)
    starts = (torch.rand(n, generator=g) * (length - widths + 1)).long()
    for i in torch.nonzero(hit).flatten().tolist():
        s, w = int(starts[i]), int(widths[i])
        out[i, s : s + w] = 0
    return out


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The full training augmentation: scaling, blur, noise and masking."""
    return mask(gaussian_noise(blur(intensity_scale(x, g), g), g), g)
