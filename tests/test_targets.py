"""Target files: validation with nearest-key suggestions, user folders, overrides, alias clashes, CLI."""

from __future__ import annotations

import json

import pytest
from test_bundle_support import TARGET_TOML, write_target

import edgeres.targets as targets_mod
from edgeres.cli import main
from edgeres.errors import EdgeresError
from edgeres.targets import all_targets, get_target, load_target_file


@pytest.fixture
def builtin(tmp_path, monkeypatch):
    """A stand-in for the built-in targets/ folder, so these tests do not depend on the shipped files."""
    d = tmp_path / "builtin"
    write_target(d, "base-cpu", ("base",))
    monkeypatch.setattr(targets_mod, "BUILTIN_DIR", d)
    monkeypatch.delenv(targets_mod.ENV_DIR, raising=False)
    return d


def _bad(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgeresError) as info:
        load_target_file(path)
    return str(info.value)


GOOD = TARGET_TOML.format(name="t1", aliases='"one"')


def test_valid_file_parses(tmp_path):
    t = load_target_file(write_target(tmp_path, "t1", ("one",)))
    assert (t.name, t.backend, t.precisions, t.default_precisions) == ("t1", "onnxruntime", ("fp32", "int8"), ("fp32",))
    assert str(t.batch_profile) == "1:1:4" and t.options == {"threads": 1} and t.aliases == ("one",)
    assert t.matches("one") and not t.matches("two")


@pytest.mark.parametrize("text,expected", [
    (GOOD.replace("backend =", "backnd ="), ["bad.toml", "unknown key 'backnd'", "did you mean 'backend'"]),
    (GOOD.replace('aliases = ["one"]', 'alias = ["one"]'), ["unknown key 'alias'", "did you mean 'aliases'"]),
    (GOOD.replace('precisions = ["fp32", "int8"]', 'precisions = "fp32"'),
     ["key 'precisions' must be a list", "got str"]),
    (GOOD.replace("accuracy_budget = 0.5", 'accuracy_budget = "half"'), ["key 'accuracy_budget' must be"]),
    (GOOD.replace('backend = "onnxruntime"', 'backend = "openvin"'),
     ["key 'backend'", "unknown backend 'openvin'", "did you mean 'openvino'"]),
    (GOOD.replace('"fp32", "int8"]', '"fp32", "int4"]'), ["unknown precision 'int4'", "did you mean 'int8'"]),
    (GOOD.replace('default_precisions = ["fp32"]', 'default_precisions = ["fp16"]'),
     ["default_precisions", "'fp16' is not in precisions"]),
    (GOOD.replace("threads = 1", "thread = 1"), ["[options]", "unknown key 'thread'", "did you mean 'threads'"]),
    (GOOD.replace("threads = 1", 'threads = "4"'), ["[options]", "key 'threads' must be an integer"]),
    (GOOD.replace("threads = 1", "threads = true"), ["key 'threads' must be"]),
    (GOOD.replace('aliases = ["one"]', "aliases = [1]"), ["key 'aliases' must be a list of strings"]),
    (GOOD.replace('name = "t1"', 'name = "T 1"'), ["name 'T 1'"]),
    (GOOD.replace('batch_profile = "1:1:4"', 'batch_profile = "4:1:8"'), ["batch_profile", "min <= opt <= max"]),
    (GOOD.replace('name = "t1"\n', ""), ["required key 'name' is missing"]),
    (GOOD + "\n[[oops", ["not valid TOML"]),
])
def test_mistakes_name_file_key_and_nearest(tmp_path, text, expected):
    message = _bad(tmp_path, text)
    for part in expected:
        assert part in message, (part, message)
    assert str(tmp_path / "bad.toml") in message


def test_batch_profile_may_be_an_integer(tmp_path):
    t = load_target_file(write_target(tmp_path, body=GOOD.replace('"1:1:4"', "8")))
    assert str(t.batch_profile) == "1:8:8"


def test_unknown_target_suggests_nearest(builtin):
    with pytest.raises(EdgeresError, match=r"unknown target 'base-cp'\. Did you mean 'base-cpu'\?"):
        get_target("base-cp")
    assert get_target("base").name == "base-cpu"


def test_user_folder_overrides_builtin_and_env_var(builtin, tmp_path, monkeypatch):
    user = tmp_path / "user"
    write_target(user, "base-cpu", ("base",), body=GOOD.replace('"t1"', '"base-cpu"').replace('"one"', '"base"')
                 .replace("threads = 1", "threads = 3"))
    write_target(user, "mine", ("my",))
    found = all_targets(user)
    assert set(found) == {"base-cpu", "mine"}
    assert found["base-cpu"].options["threads"] == 3 and found["base-cpu"].source.parent == user
    assert not found["base-cpu"].builtin
    # $EDGERES_TARGETS_DIR works too; --targets-dir wins over it
    env = tmp_path / "env"
    write_target(env, "mine", ("my",), body=GOOD.replace('"t1"', '"mine"').replace('"one"', '"my"')
                 .replace("threads = 1", "threads = 7"))
    monkeypatch.setenv(targets_mod.ENV_DIR, str(env))
    assert get_target("my").options["threads"] == 7
    assert get_target("my", user).options["threads"] == 1


def test_alias_clash_between_two_targets(builtin, tmp_path):
    user = tmp_path / "user"
    write_target(user, "other", ("base",))
    with pytest.raises(EdgeresError) as info:
        all_targets(user)
    message = str(info.value)
    assert "alias 'base'" in message and "other" in message and "base-cpu" in message
    assert str(user / "other.toml") in message and str(builtin / "base-cpu.toml") in message


def test_alias_equal_to_another_targets_name(builtin, tmp_path):
    user = tmp_path / "user"
    write_target(user, "other", ("base-cpu",))
    with pytest.raises(EdgeresError, match="clashes with the name of target 'base-cpu'"):
        all_targets(user)


def test_same_name_twice_in_one_folder(builtin, tmp_path):
    user = tmp_path / "user"
    write_target(user, "a", ("x",))
    (user / "b.toml").write_text(GOOD.replace('"t1"', '"a"').replace('"one"', '"y"'))
    with pytest.raises(EdgeresError, match="defined twice"):
        all_targets(user)


def test_missing_targets_folder(builtin, tmp_path):
    with pytest.raises(EdgeresError, match="--targets-dir"):
        all_targets(tmp_path / "nope")


def test_target_by_path(tmp_path):
    assert get_target(str(write_target(tmp_path, "by-path"))).name == "by-path"


def test_shipped_targets_are_valid():
    """Every file in targets/ parses, and names and aliases are unique across them."""
    found = all_targets()
    for t in found.values():
        assert t.builtin and set(t.default_precisions) <= set(t.precisions)


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_lists_targets_with_usability(builtin, tmp_path, capsys):
    user = tmp_path / "user"
    write_target(user, "mine", ("my",))
    assert main(["targets", "--targets-dir", str(user)]) == 0
    out = capsys.readouterr().out
    assert "base-cpu" in out and "mine" in out and "fp32*, int8" in out and "usable here" in out
    assert main(["targets", "--targets-dir", str(user), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["targets"]
    assert [d["name"] for d in data] == ["base-cpu", "mine"]
    assert data[0]["usable"]["ok"] is True and data[0]["builtin"] is True and data[1]["builtin"] is False


def test_cli_lists_unusable_backend_with_reason(builtin, capsys):
    write_target(builtin, "gpu-box", ("gpu",), body=GOOD.replace('"t1"', '"gpu-box"').replace('"one"', '"gpu"')
                 .replace('"onnxruntime"', '"tensorrt"').replace("[options]\nthreads = 1\n", ""))
    assert main(["targets", "--json"]) == 0
    data = {d["name"]: d for d in json.loads(capsys.readouterr().out)["targets"]}
    assert data["gpu-box"]["usable"]["ok"] is False and "TensorRT" in data["gpu-box"]["usable"]["reason"]


def test_cli_show(builtin, capsys):
    assert main(["targets", "show", "base"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# base-cpu") and 'batch_profile = "1:1:4"' in out and "threads = 1" in out
    assert main(["targets", "show", "base-cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "onnxruntime"
    assert main(["targets", "base"]) == 0  # shortcut for show
    assert capsys.readouterr().out.startswith("# base-cpu")


def test_targets_show_prints_toml_that_loads_back_as_the_same_target(builtin, tmp_path, capsys):
    write_target(builtin, "flags", ("f",), body=GOOD.replace('"t1"', '"flags"').replace('"one"', '"f"')
                 .replace("threads = 1", "threads = 1\nsave_optimized = false"))
    assert main(["targets", "show", "flags"]) == 0
    out = capsys.readouterr().out
    assert "false" in out and "False" not in out
    user = tmp_path / "pasted"
    user.mkdir()
    (user / "pasted.toml").write_text(out)
    assert load_target_file(user / "pasted.toml").to_dict() | {"source": None} == \
        get_target("flags").to_dict() | {"source": None}


@pytest.mark.parametrize("argv,code,message", [
    (["targets", "show", "bse-cpu"], 2, "Did you mean 'base-cpu'"),   # a name the command line got wrong
    (["targets", "show"], 2, "name the target to show"),
    (["targets", "show", "a", "b"], 2, "unexpected arguments"),
])
def test_cli_errors_are_one_line(builtin, capsys, argv, code, message):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_broken_user_file_is_one_line(builtin, tmp_path, capsys):
    user = tmp_path / "user"
    (user).mkdir()
    (user / "x.toml").write_text(GOOD.replace("backend", "backnd"))
    assert main(["targets", "--targets-dir", str(user)]) == 1
    err = capsys.readouterr().err
    assert "x.toml" in err and "did you mean 'backend'" in err and len(err.strip().splitlines()) == 1
