"""The attribution network (Table 1 of the paper), in PyTorch, for training and export only.

    features [B, T, 64] -> causal Conv1D 128 (ReLU, dropout 0.2)
      -> LSTM 256 (tanh, dropout 0.3) -> masked additive attention 128
      -> dense 64 (ReLU, dropout 0.2) -> sigmoid: conversion [B]
    per touch: [LSTM state, attention context] -> dense 64 (ReLU, dropout 0.2)
      -> sigmoid touch score; summed per channel: C channel scores [B, C]

Everything is causal or masked, so padding after a journey's last real step
(kernels.featurize left-aligns journeys) cannot change any output.

The channel scores are sums of per-touch sigmoid scores, the shape of the
truth they estimate: a channel's Shapley value is the sum of its touches'.
They learn each present channel's share of the positive Shapley value of the
network's own conversion probability (self-distillation, see models.train).
``channel_credit`` normalises them over the journey's channels, so it is >= 0,
sums to 1 over present channels and is exactly 0 on absent ones, all inside
the one forward pass.

With a credit blend (``set_credit_blend``, chosen by models.network.blend), the served
credit mixes those shares, scaled by the journey's gain over the empty journey, with
data-driven Shapley's values of the journey's channel set, read from a table by the
channel bitmask: still one forward pass, plus a lookup.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from attribid.kernels.featurize import N_FEATURES
from attribid.models.network.blend import CREDIT_FLOOR

#: feature columns 0..15 are the channel one-hot (kernels.featurize layout)
CHANNEL_ONE_HOT = 0
CONV_UNITS = 128
CONV_KERNEL = 3
LSTM_UNITS = 256
ATTENTION_UNITS = 128
DENSE_UNITS = 64
#: a finite stand-in for -inf, so an all-padding row gives zeros instead of NaN
_MASKED_SCORE = -1.0e4


class AttributionNet(nn.Module):
    """Conv1D -> LSTM -> attention -> dense -> sigmoid heads; see the module docstring.

    >>> net = AttributionNet(n_channels=7).eval()
    >>> conv, credit, attn = net(torch.zeros(2, 5, 64), torch.ones(2, 5))
    >>> tuple(conv.shape), tuple(credit.shape), tuple(attn.shape)
    ((2,), (2, 7), (2, 5))
    """

    # Set only by set_credit_blend (buffers: exported as graph constants).
    blend_table: torch.Tensor
    blend_bits: torch.Tensor

    def __init__(self, n_channels: int = 7) -> None:
        super().__init__()
        if not 1 <= n_channels <= 16:
            raise ValueError(f"n_channels must be in [1, 16], got {n_channels}")
        self.n_channels = n_channels
        self.conv = nn.Conv1d(N_FEATURES, CONV_UNITS, CONV_KERNEL)
        self.conv_drop = nn.Dropout(0.2)
        self.lstm = nn.LSTM(CONV_UNITS, LSTM_UNITS, batch_first=True)
        self.lstm_drop = nn.Dropout(0.3)
        self.att_proj = nn.Linear(LSTM_UNITS, ATTENTION_UNITS)
        self.att_score = nn.Linear(ATTENTION_UNITS, 1, bias=False)
        self.dense = nn.Linear(LSTM_UNITS, DENSE_UNITS)
        self.dense_drop = nn.Dropout(0.2)
        self.conversion_head = nn.Linear(DENSE_UNITS, 1)
        self.touch_dense = nn.Linear(2 * LSTM_UNITS, DENSE_UNITS)
        self.touch_head = nn.Linear(DENSE_UNITS, 1)

    def encode(self, features: torch.Tensor, mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """LSTM states [B, T, 256], attention context [B, 256], the 64-unit journey
        representation [B, 64] and attention weights [B, T]."""
        x = features.transpose(1, 2)
        # Left padding only: step t sees steps t-2..t, never the padding after the journey.
        x = nn.functional.pad(x, (CONV_KERNEL - 1, 0))
        x = self.conv_drop(torch.relu(self.conv(x))).transpose(1, 2)
        h, _ = self.lstm(x)
        h = self.lstm_drop(h)
        scores = self.att_score(torch.tanh(self.att_proj(h))).squeeze(-1)
        scores = torch.where(mask > 0, scores, torch.full_like(scores, _MASKED_SCORE))
        weights = torch.softmax(scores, dim=1) * mask
        # Renormalise after masking; an all-padding row keeps weights of 0.
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        context = torch.bmm(weights.unsqueeze(1), h).squeeze(1)
        z = self.dense_drop(torch.relu(self.dense(context)))
        return h, context, z, weights

    def present_channels(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """1.0 where the channel has a real touch in the journey, else 0.0: [B, C]."""
        one_hot = features[:, :, CHANNEL_ONE_HOT:CHANNEL_ONE_HOT + self.n_channels]
        return (one_hot * mask.unsqueeze(-1)).amax(dim=1)

    def heads(self, features: torch.Tensor,
              mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Conversion logit [B], channel scores >= 0 [B, C], presence [B, C], attention [B, T]."""
        h, context, z, weights = self.encode(features, mask)
        logit = self.conversion_head(z).squeeze(-1)
        both = torch.cat([h, context.unsqueeze(1).expand(-1, h.shape[1], -1)], dim=2)
        u = self.dense_drop(torch.relu(self.touch_dense(both)))
        touch = torch.sigmoid(self.touch_head(u)).squeeze(-1) * mask
        one_hot = features[:, :, CHANNEL_ONE_HOT:CHANNEL_ONE_HOT + self.n_channels]
        scores = torch.bmm(touch.unsqueeze(1), one_hot).squeeze(1)
        return logit, scores, self.present_channels(features, mask), weights

    def set_credit_blend(self, table: torch.Tensor, weight: float, baseline: float) -> None:
        """Serve ``weight`` x the network's credit + (1 - weight) x ``table``'s row of the
        journey's channel set (float32 [2 ** C, C], absolute credit; models.network.blend).

        >>> net = AttributionNet(n_channels=2).eval()
        >>> net.set_credit_blend(torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.2], [0.2, 0.6]]),
        ...                      0.0, 0.05)
        >>> features = torch.zeros(1, 2, N_FEATURES); features[0, 0, 0] = features[0, 1, 1] = 1
        >>> net(features, torch.ones(1, 2))[1].round(decimals=3).tolist()
        [[0.25, 0.75]]
        """
        if tuple(table.shape) != (1 << self.n_channels, self.n_channels):
            raise ValueError(f"table must have shape ({1 << self.n_channels}, "
                             f"{self.n_channels}), got {tuple(table.shape)}")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        # Not in the state dict: the blend is chosen after training, and a plain network's
        # weights load into a blended one and back.
        self.register_buffer("blend_table", table.float().clone(), persistent=False)
        self.register_buffer("blend_bits", 2.0 ** torch.arange(self.n_channels).float(),
                             persistent=False)
        self.blend_weight, self.blend_baseline = float(weight), float(baseline)

    def without_credit_blend(self) -> "AttributionNet":
        """A copy serving the network's own credit (the same weights, no blend)."""
        plain = copy.deepcopy(self)
        if plain.blended:
            del plain.blend_table, plain.blend_bits
        return plain

    @property
    def blended(self) -> bool:
        """Whether the served credit is blended (``set_credit_blend``)."""
        return hasattr(self, "blend_table")

    def forward(self, features: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exported outputs: conversion [B], channel_credit [B, C], attention [B, T]."""
        logit, scores, present, weights = self.heads(features, mask)
        conversion, credit = torch.sigmoid(logit), normalise_credit(scores, present)
        if self.blended:
            # Mul + ReduceSum, not MatMul: the int8 export quantizes MatMul weights, and the
            # bit weights must stay exact.
            index = (present * self.blend_bits).sum(dim=1).round().long()
            gain = (conversion - self.blend_baseline).clamp_min(0.0).unsqueeze(1)
            mixed = (self.blend_weight * credit * gain
                     + (1.0 - self.blend_weight) * self.blend_table[index] + CREDIT_FLOOR)
            credit = normalise_credit(mixed, present)
        return conversion, credit, weights


def normalise_credit(scores: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Scores restricted to present channels, rows summing to 1 (all 0 for an empty journey).

    >>> normalise_credit(torch.tensor([[0.2, 0.6, 0.9]]), torch.tensor([[1.0, 1.0, 0.0]]))
    tensor([[0.2500, 0.7500, 0.0000]])
    """
    kept = scores * present
    return kept / kept.sum(dim=1, keepdim=True).clamp_min(1e-12)


def parameter_count(net: nn.Module) -> int:
    """Number of trainable parameters.

    >>> parameter_count(AttributionNet(7)) > 400_000
    True
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
