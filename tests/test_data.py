"""edgeres.data: image sets, decoding, deterministic selection, npy/npz, specs, demo data."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeres.data import (
    DIGITS_PREPROCESS,
    PreprocessSpec,
    SkippedFilesWarning,
    cache_dir,
    demo_digits_dir,
    demo_photos_dir,
    open_set,
    to_rgb,
)
from edgeres.data import folders as sets_module
from edgeres.errors import EdgeresError

ROOT = Path(__file__).resolve().parent.parent
SMALL = PreprocessSpec(resize=8, crop=8)
IDENTITY = PreprocessSpec(resize=8, crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def solid(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> Image.Image:
    return Image.new("RGB", size, color)


def make_tree(root: Path, classes: dict[str, int], ext: str = "png") -> None:
    for c, n in classes.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            solid((10 * i, 20, 30)).save(root / c / f"img{i:02d}.{ext}")


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache for the demo data (written once for this module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGERES_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield cache_dir()


# ----------------------------------------------------------------------------- folders


def test_imagenet_layout_labels_from_sorted_class_names(tmp_path: Path) -> None:
    make_tree(tmp_path, {"zebra": 2, "ant": 3, "cat": 1})
    data = open_set(tmp_path, preprocess=SMALL, require_labels=True)
    assert data.classes == ["ant", "cat", "zebra"] and data.has_labels and len(data) == 6
    assert data.kind == "imagenet"
    (x, y), = list(data.batches(32))
    assert x.shape == (6, 3, 8, 8) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0, 0, 0, 1, 2, 2]
    assert data.files[0] == "ant/img00.png"
    d = data.describe()
    assert d["size"] == 6 and d["labels"] is True and d["num_classes"] == 3 and d["fingerprint"] == data.fingerprint()
    assert d["preprocess"]["crop"] == 8


def test_labels_txt_class_order_and_names(tmp_path: Path) -> None:
    make_tree(tmp_path, {"n02": 1, "n01": 2})
    (tmp_path / "labels.txt").write_text("n02 tabby cat\nn01 goldfish\n")
    data = open_set(tmp_path, preprocess=SMALL)
    assert data.classes == ["tabby cat", "goldfish"]
    assert dict(zip(data.files, data.labels.tolist())) == {"n01/img00.png": 1, "n01/img01.png": 1, "n02/img00.png": 0}
    (tmp_path / "labels.txt").write_text("n02\n")
    with pytest.raises(EdgeresError, match="does not list: n01"):
        open_set(tmp_path)


def test_labels_txt_per_image_in_flat_folder(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        solid((1, 2, 3)).save(tmp_path / name)
    (tmp_path / "labels.txt").write_text("a.png 2\nb.png 0\n")
    with pytest.warns(SkippedFilesWarning, match=r"1 file not listed in labels.txt .*c\.png"):
        data = open_set(tmp_path, preprocess=SMALL, require_labels=True)
    assert data.files == ["a.png", "b.png"] and data.labels.tolist() == [2, 0] and data.classes == ["0", "1", "2"]


def test_flat_folder_is_unlabeled(tmp_path: Path) -> None:
    for i in range(5):
        solid((i, i, i)).save(tmp_path / f"{i}.jpg")
    (tmp_path / ".DS_Store").write_bytes(b"junk")  # hidden: ignored silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = open_set(tmp_path, preprocess=SMALL)
    assert not data.has_labels and data.classes is None and data.kind == "flat" and len(data) == 5
    batches = list(data.batches(2))
    assert [x.shape[0] for x, _ in batches] == [2, 2, 1] and all(y is None for _, y in batches)
    with pytest.raises(EdgeresError, match="has no labels"):
        open_set(tmp_path, require_labels=True)


def test_batches_decode_lazily_and_show_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path, {"a": 10, "b": 10})
    data = open_set(tmp_path, preprocess=SMALL)
    calls = []
    real = sets_module.load_image
    monkeypatch.setattr(sets_module, "load_image", lambda p: calls.append(p) or real(p))
    it = data.batches(4, progress="checking")
    next(it)
    assert len(calls) == 4  # one batch decoded, not the whole set
    rest = list(it)
    assert len(calls) == 20 and len(rest) == 4
    assert "checking: 20/20 done" in capsys.readouterr().err


# ----------------------------------------------------------------------------- image modes


def _pixel(path: Path) -> np.ndarray:
    (x, _), = open_set(path.parent, preprocess=IDENTITY).batches()
    return x[0, :, 4, 4] * 255.0


@pytest.mark.parametrize("make, fmt, expected", [
    (lambda: Image.new("L", (8, 8), 128), "png", (128, 128, 128)),
    (lambda: Image.new("1", (8, 8), 1), "bmp", (255, 255, 255)),
    (lambda: Image.new("RGB", (8, 8), (200, 100, 50)), "bmp", (200, 100, 50)),
    (lambda: Image.new("RGB", (8, 8), (200, 100, 50)), "webp-lossless", (200, 100, 50)),
    (lambda: Image.new("RGB", (8, 8), (200, 100, 50)), "jpg", (200, 100, 50)),
    (lambda: Image.new("RGBA", (8, 8), (200, 100, 50, 255)), "png", (200, 100, 50)),
    (lambda: Image.new("RGBA", (8, 8), (200, 100, 50, 0)), "png", (0, 0, 0)),  # transparent -> black
    (lambda: Image.new("LA", (8, 8), (90, 255)), "png", (90, 90, 90)),
    (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "jpg", (255, 0, 0)),
    (lambda: Image.new("RGB", (8, 8), (0, 0, 255)).convert("P"), "png", (0, 0, 255)),
    (lambda: Image.fromarray(np.full((8, 8), 65535, np.uint16)), "png", (255, 255, 255)),
    (lambda: Image.fromarray(np.full((8, 8), 257 * 40, np.uint16)), "png", (40, 40, 40)),  # dark 16-bit: not x257
])
def test_every_mode_decodes_to_rgb(tmp_path: Path, make, fmt: str, expected: tuple[int, int, int]) -> None:
    image = make()
    path = tmp_path / f"img.{fmt.split('-')[0]}"
    if fmt == "webp-lossless":
        image.save(path, lossless=True)
    else:
        image.save(path)
    assert Image.open(path).mode == image.mode or fmt in ("bmp", "webp-lossless") or image.mode == "LA"
    tolerance = 6 if fmt == "jpg" else 0.5
    np.testing.assert_allclose(_pixel(path), expected, atol=tolerance)


def test_palette_with_transparency_and_16bit_mode() -> None:
    p = Image.new("P", (2, 2), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    p.info["transparency"] = 1
    assert np.asarray(to_rgb(p)).tolist()[0][0] == [0, 0, 0]
    i16 = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert i16.mode.startswith("I;16") and np.asarray(to_rgb(i16))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_respected(tmp_path: Path) -> None:
    image = Image.new("RGB", (32, 32), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 16, 16))  # red top-left quadrant as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    spec = PreprocessSpec(resize=32, crop=32, mean=(0, 0, 0), std=(1, 1, 1))
    (x, _), = open_set(tmp_path, preprocess=spec).batches()
    red = x[0, 0]
    quadrants = {"tl": red[:16, :16].mean(), "tr": red[:16, 16:].mean(), "bl": red[16:, :16].mean()}
    assert quadrants["tr"] > 0.9 and quadrants["tl"] < 0.1 and quadrants["bl"] < 0.1


# ----------------------------------------------------------------------------- selection and fingerprint


def _write_set(root: Path, names: list[str]) -> None:
    for name in names:
        cls, file = name.split("/")
        (root / cls).mkdir(parents=True, exist_ok=True)
        value = sum(map(ord, name)) % 256
        Image.new("RGB", (8, 8), (value, 255 - value, 7)).save(root / cls / file)


def test_selection_is_independent_of_file_order(tmp_path: Path) -> None:
    names = [f"{c}/{i:03d}.png" for c in "abcd" for i in range(15)]
    rng = np.random.default_rng(1)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    _write_set(tmp_path / "one", names)
    _write_set(tmp_path / "two", shuffled[::-1])
    one = open_set(tmp_path / "one", size=17, seed=3, preprocess=SMALL)
    two = open_set(tmp_path / "two", size=17, seed=3, preprocess=SMALL)
    assert one.files == two.files and len(one) == 17 and one.files == sorted(one.files)
    assert one.fingerprint() == two.fingerprint()
    other_seed = open_set(tmp_path / "one", size=17, seed=4, preprocess=SMALL)
    assert other_seed.files != one.files and other_seed.fingerprint() != one.fingerprint()
    bigger = open_set(tmp_path / "one", size=20, seed=3, preprocess=SMALL)
    assert set(one.files) <= set(bigger.files)  # a larger size extends the selection
    assert len(open_set(tmp_path / "one", size=1000, preprocess=SMALL)) == 60


def test_fingerprint_tracks_contents_labels_and_preprocessing(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 2, "b": 2})
    base = open_set(tmp_path, preprocess=SMALL).fingerprint()
    assert open_set(tmp_path, preprocess=SMALL).fingerprint() == base
    assert open_set(tmp_path, preprocess=PreprocessSpec(resize=9, crop=8)).fingerprint() != base
    solid((99, 99, 99)).save(tmp_path / "b" / "img01.png")
    changed = open_set(tmp_path, preprocess=SMALL).fingerprint()
    assert changed != base
    (tmp_path / "b").rename(tmp_path / "c")
    assert open_set(tmp_path, preprocess=SMALL).fingerprint() != changed


def test_bad_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    with pytest.warns(SkippedFilesWarning) as record:
        data = open_set(tmp_path, preprocess=SMALL)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 3 unreadable or non-image files" in message and "a/notes.txt" in message
    assert len(data) == 6 and data.describe()["skipped"] == 3


def test_image_that_fails_to_decode_is_skipped_in_batches(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 2, "b": 2}, ext="jpg")
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, "JPEG")
    (tmp_path / "b" / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    data = open_set(tmp_path, preprocess=SMALL)
    with pytest.warns(SkippedFilesWarning, match="do not decode: b/truncated.jpg"):
        batches = list(data.batches(8))
    (x, y), = batches
    assert x.shape[0] == 4 and y.tolist() == [0, 0, 1, 1]


def test_error_cases_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(EdgeresError, match=f"image folder {tmp_path / 'missing'} does not exist"):
        open_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeresError, match=f"no usable images in {tmp_path / 'empty'}"):
        open_set(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_text("text")
    with pytest.raises(EdgeresError, match=r"no usable images in .*junk \(1 unreadable"):
        open_set(tmp_path / "junk")
    make_tree(tmp_path / "one", {"only": 2})
    assert len(open_set(tmp_path / "one")) == 2  # fine for calibration
    with pytest.raises(EdgeresError, match=f"{tmp_path / 'one'} has only one class folder"):
        open_set(tmp_path / "one", require_labels=True)
    with pytest.raises(EdgeresError, match="neither an existing folder"):
        open_set("no-such-spec-name")
    with pytest.raises(EdgeresError, match="set size must be a positive integer"):
        open_set(tmp_path / "one", size=0)


# ----------------------------------------------------------------------------- npy / npz


def test_npy_npz_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3, 8, 8)).astype(np.float32)
    y = np.arange(10) % 3
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "xy.npz", images=x, labels=y, classes=np.array(["cat", "dog", "eel"]))
    plain = open_set(tmp_path / "x.npy")
    got = np.concatenate([b for b, _ in plain.batches(4)])
    np.testing.assert_array_equal(got, x)
    assert not plain.has_labels and plain.preprocess.crop == 8 and plain.preprocess.extra == {"precomputed": True}
    labeled = open_set(tmp_path / "xy.npz", require_labels=True)
    xs, ys = labeled.load_all(batch_size=3)
    np.testing.assert_array_equal(xs, x)
    assert ys.tolist() == y.tolist() and labeled.classes == ["cat", "dog", "eel"]
    sub = open_set(tmp_path / "xy.npz", size=4, seed=1)
    sub2 = open_set(tmp_path / "xy.npz", size=4, seed=1)
    assert len(sub) == 4 and sub.fingerprint() == sub2.fingerprint() != labeled.fingerprint()
    np.testing.assert_array_equal(sub.load_all()[0], x[sub.indices])
    np.savez(tmp_path / "xy_default.npz", x, y)  # arr_0, arr_1
    assert open_set(tmp_path / "xy_default.npz").labels.tolist() == y.tolist()
    with pytest.raises(EdgeresError, match="preprocessing expects"):
        open_set(tmp_path / "x.npy", preprocess=PreprocessSpec())


def test_npy_npz_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "ints.npy", np.zeros((2, 3, 8, 8), np.uint8))
    np.save(tmp_path / "flat.npy", np.zeros((2, 64), np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 8, 8), np.float32))
    np.savez(tmp_path / "badlabels.npz", x=np.zeros((2, 3, 8, 8), np.float32), y=np.zeros(3, np.int64))
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 nope")
    for name, pattern in [("ints.npy", "uint8"), ("flat.npy", "4-D"), ("empty.npy", "no images"),
                          ("badlabels.npz", "labels must be 2"), ("corrupt.npz", "cannot read"),
                          ("missing.npy", "does not exist")]:
        with pytest.raises(EdgeresError, match=pattern):
            open_set(tmp_path / name)
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(EdgeresError, match="has no labels"):
        open_set(tmp_path / "ok.npy", require_labels=True)


# ----------------------------------------------------------------------------- calibration specs


def test_spec_by_path_and_name_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path / "imgs", {"a": 4, "b": 4})
    spec = tmp_path / "specs" / "mine.toml"
    spec.parent.mkdir()
    spec.write_text('source = "../imgs"\nsize = 5\nseed = 2\n[preprocess]\nresize = 8\ncrop = 8\n')
    by_path = open_set(spec)
    assert len(by_path) == 5 and by_path.preprocess.crop == 8 and by_path.describe()["spec"] == str(spec)
    monkeypatch.setenv("EDGERES_CALIBRATION_DIR", str(spec.parent))
    by_name = open_set("mine")
    assert by_name.files == by_path.files and by_name.name.startswith("mine: ")
    assert len(open_set("mine", size=3)) == 3  # arguments override the spec
    assert open_set("mine", preprocess=PreprocessSpec(resize=16, crop=16)).preprocess.crop == 16
    monkeypatch.chdir(tmp_path)
    override = open_set("mine=imgs/a")  # the spec's settings, another folder (relative to the cwd)
    assert len(override) == 4 and override.kind == "flat"


def test_builtin_specs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_cache: Path) -> None:
    monkeypatch.chdir(tmp_path)  # found from anywhere, not only the repository root
    demo = open_set("demo")
    assert len(demo) == 512 and demo.has_labels and demo.preprocess == DIGITS_PREPROCESS
    monkeypatch.delenv("EDGERES_IMAGENET_DIR", raising=False)
    with pytest.raises(EdgeresError, match=r"\$EDGERES_IMAGENET_DIR, which is not set.*--calib imagenet="):
        open_set("imagenet")
    make_tree(tmp_path / "net", {"x": 3, "y": 3})
    monkeypatch.setenv("EDGERES_IMAGENET_DIR", str(tmp_path / "net"))
    net = open_set(ROOT / "calibration" / "imagenet.toml")
    assert len(net) == 6 and net.preprocess == PreprocessSpec()
    assert len(open_set("imagenet=net")) == 6


def test_spec_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('source = "x"\nsise = 4\n')
    with pytest.raises(EdgeresError, match=r"bad.toml: unknown key 'sise' \(did you mean 'size'\?\)"):
        open_set(bad)
    bad.write_text('source = "x"\n[preprocess]\ncrop = 300\n')
    with pytest.raises(EdgeresError, match="bad.toml.*resize >= crop"):
        open_set(bad)
    bad.write_text("size = 4\n")
    with pytest.raises(EdgeresError, match="required key 'source' is missing"):
        open_set(bad)
    bad.write_text("source = [\n")
    with pytest.raises(EdgeresError, match="not valid TOML"):
        open_set(bad)
    with pytest.raises(EdgeresError, match="does not exist"):
        open_set(tmp_path / "nope.toml")
    bad.write_text('source = "gone"\n')
    with pytest.raises(EdgeresError, match=f"spec 'bad' .*: {tmp_path / 'gone'} does not exist"):
        open_set(bad)


# ----------------------------------------------------------------------------- demo data


def test_demo_digits_materialized_once(demo_cache: Path) -> None:
    train = demo_digits_dir("train")
    assert demo_digits_dir("val") == train.parent / "val"
    assert train.parent.parent == demo_cache / "demo"
    marker = train.parent / ".complete.json"
    stamp = marker.stat().st_mtime_ns
    assert demo_digits_dir("train") == train and marker.stat().st_mtime_ns == stamp  # idempotent
    assert not [p for p in train.parent.parent.iterdir() if p.name.endswith(".tmp")]
    tr = open_set(train, preprocess=DIGITS_PREPROCESS, require_labels=True)
    va = open_set("demo:digits-val", require_labels=True)
    assert len(tr) + len(va) == 1797 and len(va) == 359 and tr.classes == [str(i) for i in range(10)]
    counts = np.bincount(va.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified 20%
    assert not set(tr.files) & set(va.files)
    with Image.open(train / "0" / tr.files[0].split("/")[1]) as image:
        assert image.mode == "RGB" and image.size == (32, 32) and image.format == "PNG"
    with pytest.raises(EdgeresError, match="unknown digits split"):
        demo_digits_dir("test")


def test_demo_photos(demo_cache: Path) -> None:
    folder = demo_photos_dir()
    photos = open_set("demo:photos")
    assert folder.parent == demo_cache / "demo" and len(photos) >= 10 and not photos.has_labels
    x, _ = next(photos.batches(4))
    assert x.shape == (4, 3, 224, 224)
    assert {"astronaut.png", "chelsea.png", "coffee.png"} <= set(photos.files)
    with pytest.raises(EdgeresError, match="unknown demo set"):
        open_set("demo:cifar")


def test_data_package_imports_without_torch() -> None:
    code = ("import sys, edgeres.data, edgeres.data.demo, edgeres.data.sets, edgeres.data.sources; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
