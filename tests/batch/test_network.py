"""The attribution network: shape, size, masking and the credit it returns."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from attribid.kernels.featurize import N_FEATURES  # noqa: E402
from attribid.models.network.architecture import (  # noqa: E402
    AttributionNet, normalise_credit, parameter_count,
)

pytestmark = pytest.mark.train


def _journeys(batch: int, steps: int, n_channels: int, seed: int) -> tuple:
    """Random featurized-like inputs: one channel one-hot per real step, left-aligned."""
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(batch, steps, N_FEATURES, generator=g)
    features[:, :, :16] = 0.0
    channel = torch.randint(0, n_channels, (batch, steps), generator=g)
    features.scatter_(2, channel.unsqueeze(-1), 1.0)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    mask = (torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)).float()
    features = features * mask.unsqueeze(-1)
    return features, mask, channel, lengths


def test_outputs_have_contract_shapes_and_ranges() -> None:
    net = AttributionNet(7).eval()
    features, mask, _, _ = _journeys(5, 9, 7, seed=1)
    conv, credit, attention = net(features, mask)
    assert conv.shape == (5,) and credit.shape == (5, 7) and attention.shape == (5, 9)
    assert torch.all((conv > 0) & (conv < 1))
    assert torch.all(credit >= 0)
    assert torch.allclose(attention.sum(dim=1), torch.ones(5), atol=1e-6)
    assert torch.all(attention[mask == 0] == 0)


def test_parameter_count_is_about_half_a_million() -> None:
    count = parameter_count(AttributionNet(7))
    # Conv 64*128*3+128, LSTM 4*256*(128+256)+2*4*256, attention 256*128+128+128,
    # dense 256*64+64, conversion 64+1, touch dense 512*64+64, touch score 64+1:
    # written out so a layer change is caught.
    expected = (64 * 128 * 3 + 128) + (4 * 256 * (128 + 256) + 2 * 4 * 256) \
        + (256 * 128 + 128 + 128) + (256 * 64 + 64) + (64 + 1) + (512 * 64 + 64) + (64 + 1)
    assert count == expected
    assert 400_000 < count < 600_000


def test_padding_does_not_change_any_output() -> None:
    net = AttributionNet(7).eval()
    features, mask, _, lengths = _journeys(6, 5, 7, seed=2)
    with torch.no_grad():
        short = net(features, mask)
        # Longer padding full of garbage (mask 0) must be ignored.
        extra = torch.full((6, 7, N_FEATURES), 9.0)
        long = net(torch.cat([features, extra], dim=1), torch.cat([mask, torch.zeros(6, 7)], dim=1))
        # Garbage inside the existing padding too.
        noisy = features.clone()
        noisy[mask == 0] = -3.0
        same_len = net(noisy, mask)
    assert torch.allclose(short[0], long[0], atol=1e-6)  # conversion
    assert torch.allclose(short[1], long[1], atol=1e-6)  # channel credit
    assert torch.allclose(short[2], long[2][:, :5], atol=1e-6)  # attention on real steps
    assert torch.all(long[2][:, 5:] == 0)
    for a, c in zip(short, same_len):
        assert torch.allclose(a, c, atol=1e-6)
    assert int(lengths.min()) >= 1


def test_credit_sums_to_one_over_present_channels_and_is_zero_elsewhere() -> None:
    net = AttributionNet(7).eval()
    features, mask, channel, lengths = _journeys(32, 6, 4, seed=3)
    with torch.no_grad():
        _, credit, _ = net(features, mask)
    for b in range(32):
        present = set(channel[b, :int(lengths[b])].tolist())
        for c in range(7):
            if c in present:
                assert credit[b, c] > 0
            else:
                assert credit[b, c] == 0
        assert abs(float(credit[b].sum()) - 1.0) < 1e-5


def test_empty_journey_gives_zero_credit_not_nan() -> None:
    net = AttributionNet(7).eval()
    with torch.no_grad():
        conv, credit, attention = net(torch.zeros(2, 3, N_FEATURES), torch.zeros(2, 3))
    assert torch.all(torch.isfinite(conv))
    assert torch.all(credit == 0) and torch.all(attention == 0)


def test_normalise_credit_matches_a_plain_division() -> None:
    scores = torch.tensor([[0.3, 0.1, 0.6], [0.5, 0.5, 0.5]])
    present = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = normalise_credit(scores, present).numpy()
    np.testing.assert_allclose(out, [[1 / 3, 0, 2 / 3], [0, 0, 1]], atol=1e-6)


def test_channel_count_is_checked() -> None:
    with pytest.raises(ValueError, match="n_channels"):
        AttributionNet(0)
    with pytest.raises(ValueError, match="n_channels"):
        AttributionNet(17)
