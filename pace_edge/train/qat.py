"""Quantisation-aware fine-tuning (QAT) of a trained bundle, for INT8 exports.

A few epochs on TRAINING spectra with the INT8 rounding of the export in the forward pass and
straight-through gradients, so the weights settle where INT8 classifies like FP32:

* weights: symmetric, per output channel, zero point 0, in [-127, 127] (the rules TensorRT and
  the QDQ export follow). BatchNorm stays frozen in eval mode, so per-channel rounding of a
  conv's weight is the rounding of the BatchNorm-folded weight the export quantises;
* activations (what each quantisable layer reads: the spectrum, the pooled input, each block's
  input, the depthwise output after GELU, the pointwise branch before the add, the pooled
  features): symmetric per tensor, zero point 0, with the range the export calibrates
  (the 99.99th percentile of ``|x|`` on the calibration spectra), fixed during fine-tuning;
* the loss is cross-entropy on the labels plus the KL divergence to the FP32 parent's softmax
  (the parent is the reference the export's criterion compares with).

Only the calibration share of the training spectra is used (the same split the export makes,
for the same seed): the export's held-out spectra stay unseen. The result is a new bundle whose
``training["qat"]`` records the fine-tuning, with the parent's weights digest.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model import build_model
from ..model.pace import PACE, TRUST_PREFIX

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..data import SpectralDataset

PERCENTILE = 99.99
ACT_RANGE = (-128, 127)
WEIGHT_RANGE = (-127, 127)


@dataclass(frozen=True)
class QatOptions:
    """How to fine-tune: epochs, AdamW learning rate, batch size, distillation weight."""

    epochs: int = 3
    lr: float = 1e-5  # 1e-4 moved the paper model off its parent on COV (measured)
    batch_size: int = 32
    distill: float = 1.0  # weight of the KL term to the FP32 parent
    labels: float = 1.0  # weight of the cross-entropy on the labels
    seed: int = 0
    float_layers: tuple[str, ...] = ()  # layer keys left unquantised (pool, embed, blocks.N.pw)


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel INT8 rounding of ``w`` (zero point 0, [-127, 127])."""
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
    scale = (amax / WEIGHT_RANGE[1]).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, *WEIGHT_RANGE)


def fake_quant_act(x: torch.Tensor, amax: float) -> torch.Tensor:
    """Symmetric per-tensor INT8 rounding of ``x`` for the range ``[-amax, amax]``."""
    return torch.fake_quantize_per_tensor_affine(x, max(amax, 1e-12) / 127.0, 0, *ACT_RANGE)


class QatPACE(nn.Module):
    """A :class:`PACE` run with the export's INT8 rounding (shares the parent's modules)."""

    def __init__(self, model: PACE, amax: dict[str, float], float_layers: Sequence[str] = ()
                 ) -> None:
        super().__init__()
        self.model = model
        self.amax = dict(amax)
        self.floats = set(float_layers)

    def _q(self, key: str, x: torch.Tensor, site: str) -> torch.Tensor:
        if key in self.floats or any(key.startswith(f + ".") for f in self.floats):
            return x
        return fake_quant_act(x, self.amax[site])

    def _conv(self, key: str, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        quantised = not (key in self.floats or any(key.startswith(f + ".") for f in self.floats))
        w = fake_quant_weight(conv.weight) if quantised else conv.weight
        return F.conv1d(x, w, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(self, x: torch.Tensor, record: dict[str, list[torch.Tensor]] | None = None
                ) -> torch.Tensor:
        m = self.model

        def site(key: str, name: str, t: torch.Tensor) -> torch.Tensor:
            if record is not None:
                record.setdefault(name, []).append(t.detach().abs().flatten())
                return t
            return self._q(key, t, name)

        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = m.pool(site("pool", "pool", x))
        x = m.act(m.embed_bn(self._conv("embed", m.embed, site("embed", "embed", x))))
        for i, block in enumerate(m.blocks):
            x = site(f"blocks.{i}.dw", f"blocks.{i}.in", x)
            y = block.act(block.dw_bn(self._conv(f"blocks.{i}.dw", block.dw, x)))
            y = site(f"blocks.{i}.pw", f"blocks.{i}.pw", y)
            y = block.pw_bn(self._conv(f"blocks.{i}.pw", block.pw, y))
            y = site(f"blocks.{i}.add", f"blocks.{i}.add", y)
            x = block.act(y + x)
        f = site("head", "head", x.mean(dim=-1))
        head = m.head
        quantised = "head" not in self.floats
        w = fake_quant_weight(head.weight) if quantised else head.weight
        return F.linear(f, w, head.bias)


@torch.no_grad()
def activation_ranges(model: PACE, x: np.ndarray, batch: int = 64) -> dict[str, float]:
    """The :data:`PERCENTILE` of ``|a|`` at every activation site, on spectra ``x``."""
    record: dict[str, list[torch.Tensor]] = {}
    probe = QatPACE(model.eval(), {})
    for start in range(0, len(x), batch):
        probe(torch.from_numpy(x[start : start + batch]), record)
    return {k: float(np.percentile(torch.cat(v).numpy(), PERCENTILE)) for k, v in record.items()}


@dataclass
class QatResult:
    """The fine-tuned bundle and what happened."""

    bundle: Bundle
    record: dict[str, Any]


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())


def qat_finetune(bundle: Bundle, data: SpectralDataset, options: QatOptions | None = None,
                 calibration_size: int | None = None) -> QatResult:
    """Fine-tune ``bundle`` with INT8 rounding in the loop on training spectra ``data``.

    Uses the export's calibration split (:func:`~pace_edge.export.quantize.calibration.
    select_calibration` with ``options.seed``): trains on its calibration spectra, reports
    agreement with the FP32 parent on its held-out ones before and after. Deterministic for a
    given seed and thread count.
    """
    from ..bundle import WEIGHTS_FILE, Bundle, sha256_file
    from ..export.quantize.calibration import select_calibration

    opts = options or QatOptions()
    cal = select_calibration(bundle, data, calibration_size, opts.seed)
    x, y = cal.inputs, cal.labels
    held = cal.holdout if len(cal.holdout) else cal.inputs
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    parent = build_model(bundle.config, bundle.weights).eval()
    student = copy.deepcopy(parent).eval()  # BatchNorm frozen: eval mode throughout
    amax = activation_ranges(parent, x)
    qat = QatPACE(student, amax, opts.float_layers)
    xt, yt, ht = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), torch.from_numpy(held)
    with torch.no_grad():
        teacher = parent(xt)
        held_ref = parent(ht)
        before = _agreement(qat(ht), held_ref)
    params = [p for n, p in student.named_parameters() if "_bn." not in n]
    optimiser = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.0)
    history = []
    t0 = time.perf_counter()
    for epoch in range(opts.epochs):
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(xt), opts.batch_size):
            idx = order[start : start + opts.batch_size]
            logits = qat(xt[idx])
            loss = opts.labels * F.cross_entropy(logits, yt[idx])
            if opts.distill:
                loss = loss + opts.distill * F.kl_div(
                    F.log_softmax(logits, 1), F.softmax(teacher[idx], 1), reduction="batchmean")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        with torch.no_grad():
            agree = _agreement(qat(ht), held_ref)
        history.append({"epoch": epoch + 1, "loss": round(total / len(xt), 6),
                        "holdout_agreement": agree})
    with torch.no_grad():
        after = _agreement(qat(ht), held_ref)
        fp32_after = _agreement(student(ht), held_ref)
    weights = {k: v.detach().cpu().numpy().copy() for k, v in student.state_dict().items()}
    # the "unknown" detector's arrays stay the parent's: fine-tuning is held to the parent's
    # outputs, and the export checks the fine-tuned model's features against them
    weights.update({k: v for k, v in bundle.weights.items() if k.startswith(TRUST_PREFIX)})
    parent_sha = (sha256_file(bundle.path / WEIGHTS_FILE) if bundle.path is not None else None)
    record = {
        "options": {**asdict(opts), "float_layers": list(opts.float_layers)},
        "rules": "symmetric INT8, zero point 0; weights per output channel in [-127, 127] "
                 f"(BatchNorm frozen); activations per tensor, range = {PERCENTILE}th "
                 "percentile of |x| on the calibration spectra",
        "parent_weights_sha256": parent_sha,
        "spectra": int(len(x)),
        "holdout_spectra": int(len(held)),
        "holdout_agreement_int8_before": before,
        "holdout_agreement_int8_after": after,
        "holdout_agreement_fp32_after": fp32_after,
        "history": history,
        "detector": ("the parent's (not refitted)"
                     if any(k.startswith(TRUST_PREFIX) for k in bundle.weights) else None),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    training = {**bundle.training, "qat": record}
    out = Bundle(config=bundle.config, weights=weights, classes=list(bundle.classes),
                 axis=bundle.axis.copy(), preprocessing=bundle.preprocessing,
                 training=training, versions=dict(bundle.versions))
    return QatResult(out, record)
