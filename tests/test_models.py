import pytest
import torch

from edgeres.errors import EdgeresError, UsageError
from edgeres.models import (
    ResNet,
    ZeroPadShortcut,
    count_params,
    load_checkpoint,
    load_state_dict_strict,
    summarize,
)

TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
PUBLISHED_GMACS = {18: 1.8, 34: 3.6, 50: 4.1, 101: 7.8, 152: 11.5}


@pytest.mark.parametrize("depth", sorted(TORCHVISION_PARAMS))
def test_parameter_count_equals_torchvision(depth):
    assert count_params(ResNet(depth)) == TORCHVISION_PARAMS[depth]


@pytest.mark.parametrize("depth", sorted(PUBLISHED_GMACS))
def test_macs_within_two_percent_of_published(depth):
    s = summarize(ResNet(depth), 224)
    assert s.params == TORCHVISION_PARAMS[depth]
    assert abs(s.gmacs - PUBLISHED_GMACS[depth]) / PUBLISHED_GMACS[depth] < 0.02


def test_macs_follow_input_size_and_classes():
    small = summarize(ResNet(18, num_classes=10), 112)
    big = summarize(ResNet(18, num_classes=10), 224)
    assert 3.5 < big.macs / small.macs < 4.2  # ~4x the pixels; stage sizes round up at 112
    assert summarize(ResNet(18, num_classes=10), 224).params < TORCHVISION_PARAMS[18]


@pytest.mark.parametrize("depth,size,classes", [(18, 32, 10), (34, 64, 7), (50, 96, 1000), (18, 225, 3), (101, 40, 2)])
def test_output_shape(depth, size, classes):
    model = ResNet(depth, num_classes=classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, classes)


def test_in_channels_parameter():
    model = ResNet(18, num_classes=4, in_channels=1).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 4)


def test_architecture_table_rows():
    s = summarize(ResNet(50), 224)
    assert [r.name for r in s.stages] == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert [r.output_size for r in s.stages[:5]] == ["56x56", "56x56", "28x28", "14x14", "7x7"]
    assert s.stages[1].blocks == "3 x Bottleneck" and s.stages[4].out_channels == 2048
    assert sum(r.macs for r in s.stages) == s.macs


def _downsample_kinds(model):
    return {f"{name}.{i}": type(block.downsample).__name__
            for name in ("layer1", "layer2", "layer3", "layer4")
            for i, block in enumerate(getattr(model, name))}


def test_basic_blocks_use_identity_except_where_shape_changes():
    kinds = _downsample_kinds(ResNet(18))
    assert kinds["layer1.0"] == "NoneType" and kinds["layer1.1"] == "NoneType"
    for stage in ("layer2", "layer3", "layer4"):
        assert kinds[f"{stage}.0"] == "Sequential" and kinds[f"{stage}.1"] == "NoneType"


def test_bottleneck_first_block_projects_even_at_stride_one():
    kinds = _downsample_kinds(ResNet(50))
    assert kinds["layer1.0"] == "Sequential"  # 64 -> 256 channels
    assert kinds["layer1.1"] == "NoneType"


def test_zero_pad_shortcut_has_no_parameters_and_pads_channels():
    model = ResNet(18, shortcut="zeropad")
    assert isinstance(model.layer2[0].downsample, ZeroPadShortcut)
    assert not any("downsample" in k for k in model.state_dict())
    x = torch.randn(1, 64, 8, 8)
    y = model.layer2[0].downsample(x)
    assert y.shape == (1, 128, 4, 4)
    assert torch.equal(y[:, :64], x[:, :, ::2, ::2]) and not y[:, 64:].any()
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_zero_init_residual_zeroes_last_bn_of_each_block():
    model = ResNet(50, zero_init_residual=True)
    assert not model.layer1[0].bn3.weight.any() and model.layer1[0].bn1.weight.all()
    assert not ResNet(18, zero_init_residual=True).layer4[1].bn2.weight.any()


def test_stride_sits_on_the_bottleneck_3x3():
    block = ResNet(50).layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


def _torchvision_layout_state(depth: int) -> dict[str, torch.Tensor]:
    """A state_dict built by key name as torchvision lays it out (not via our model)."""
    from edgeres.models.resnet import DEPTHS

    kind, counts = DEPTHS[depth]
    state: dict[str, torch.Tensor] = {}

    def bn(prefix: str, c: int) -> None:
        state.update({f"{prefix}.weight": torch.rand(c), f"{prefix}.bias": torch.rand(c),
                      f"{prefix}.running_mean": torch.rand(c), f"{prefix}.running_var": torch.rand(c) + 0.5,
                      f"{prefix}.num_batches_tracked": torch.tensor(0)})

    state["conv1.weight"] = torch.randn(64, 3, 7, 7)
    bn("bn1", 64)
    in_c, exp = 64, (1 if kind == "basic" else 4)
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), counts), start=1):
        for b in range(n):
            p = f"layer{s}.{b}"
            if kind == "basic":
                convs = [(planes, in_c if b == 0 else planes, 3), (planes, planes, 3)]
            else:
                convs = [(planes, in_c if b == 0 else planes * 4, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            for i, (o, c, k) in enumerate(convs, start=1):
                state[f"{p}.conv{i}.weight"] = torch.randn(o, c, k, k)
                bn(f"{p}.bn{i}", o)
            if b == 0 and (s > 1 or exp == 4):
                state[f"{p}.downsample.0.weight"] = torch.randn(planes * exp, in_c, 1, 1)
                bn(f"{p}.downsample.1", planes * exp)
        in_c = planes * exp
    state["fc.weight"] = torch.randn(1000, 512 * exp)
    state["fc.bias"] = torch.randn(1000)
    return state


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_layout_state_dict_loads_strict(depth):
    state = _torchvision_layout_state(depth)
    model = ResNet(depth)
    load_state_dict_strict(model, state)
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_checkpoint_wrapped_and_module_prefixed_loads(tmp_path):
    state = ResNet(18, num_classes=5).state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    model = ResNet(18, num_classes=5)
    load_checkpoint(model, path)
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_checkpoint_with_wrong_key_lists_it(tmp_path):
    state = ResNet(18).state_dict()
    state["fc.weights"] = state.pop("fc.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(EdgeresError, match=r"missing keys: fc\.weight.*unexpected keys: fc\.weights"):
        load_checkpoint(ResNet(18), tmp_path / "bad.pth")


def test_checkpoint_with_wrong_shape_lists_it(tmp_path):
    torch.save({"model": ResNet(18, num_classes=10).state_dict()}, tmp_path / "ten.pth")
    with pytest.raises(EdgeresError, match=r"wrong shapes.*fc\.weight \(10, 512\) != \(1000, 512\)"):
        load_checkpoint(ResNet(18), tmp_path / "ten.pth")


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeresError, match="cannot read checkpoint"):
        load_checkpoint(ResNet(18), tmp_path / "junk.pth")


@pytest.mark.parametrize("kwargs,message", [
    ({"depth": 42}, "unsupported depth 42"),
    ({"depth": 18, "num_classes": 0}, "class count"),
    ({"depth": 18, "shortcut": "b"}, "unknown shortcut"),
])
def test_bad_model_arguments_raise_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ResNet(**kwargs)


def test_corrupt_checkpoint_message_never_suggests_unpickling(tmp_path):
    import argparse

    torch.save(argparse.Namespace(weights=torch.zeros(1)), tmp_path / "pickled.pth")  # a pickled object
    with pytest.raises(EdgeresError) as info:
        load_checkpoint(ResNet(18), tmp_path / "pickled.pth")
    assert "weights_only=False" not in str(info.value) and "never loads pickled objects" in str(info.value)
