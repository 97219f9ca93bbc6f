"""`edgeres info --gradients`: what the shortcuts do to the gradient reaching each stage."""

from __future__ import annotations

import json
import math

import pytest
import torch

from edgeres.cli import main
from edgeres.models import ResNet
from edgeres.models.gradients import POINTS, gradient_flow, set_shortcuts


def _spread(ratios: list[float]) -> float:
    """Orders of magnitude between the largest and smallest gradient ratio along the network."""
    return math.log10(max(ratios) / min(ratios))


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_shortcuts_keep_the_gradient_closer_to_the_classifiers(depth):
    torch.manual_seed(0)
    rows = gradient_flow(ResNet(depth, num_classes=10), input_size=32, batch=4)
    assert [r.point for r in rows] == list(POINTS)
    assert rows[-1].residual_ratio == pytest.approx(1.0) and rows[-1].plain_ratio == pytest.approx(1.0)
    assert _spread([r.plain_ratio for r in rows]) > _spread([r.residual_ratio for r in rows])


def test_the_plain_network_degrades_faster_with_depth():
    spreads = {}
    for depth in (18, 50):
        torch.manual_seed(0)
        rows = gradient_flow(ResNet(depth, num_classes=10), input_size=32, batch=4)
        spreads[depth] = _spread([r.plain_ratio for r in rows]) - _spread([r.residual_ratio for r in rows])
    assert spreads[50] > spreads[18]


def test_measuring_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = ResNet(18, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    before = model(x).detach()
    gradient_flow(model, input_size=32, batch=2)
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(model(x).detach(), before)
    set_shortcuts(model, False)
    assert not torch.allclose(model(x), before)


def test_info_gradients_json_on_a_trained_checkpoint(capsys, tmp_path):
    from edgeres.data import ensure_demo_model

    weights = ensure_demo_model(progress=False) / "model.pth"
    plot = tmp_path / "g.png"
    code = main(["info", "--gradients", "--depth", "18", "--num-classes", "10", "--input-size", "32",
                 "--weights", str(weights), "--plot", str(plot), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and plot.stat().st_size > 0
    assert doc["weights"] == str(weights) and [r["point"] for r in doc["rows"]] == list(POINTS)
    assert all(r["residual_norm"] > 0 and r["plain_norm"] > 0 for r in doc["rows"])
