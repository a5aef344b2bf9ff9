"""params.yaml: equal to a fresh composition of conf/, and validated."""

from __future__ import annotations

import copy

import pytest

from keyspot.compose import compose
from keyspot.params import ParamsError, from_dict, load, read_yaml


def test_committed_params_equal_fresh_composition(repo):
    assert read_yaml(repo / "params.yaml") == compose(repo / "conf"), (
        "params.yaml is stale: run `make params` after editing conf/")


def test_committed_params_load(repo):
    params = load(repo / "params.yaml")
    assert params.dataset.keywords[:2] == ("yes", "no")  # strings, not YAML 1.1 booleans
    assert params.model.name == "ds_cnn_80"


@pytest.mark.parametrize("group", ["dataset", "features", "model", "train", "quantize", "export", "deploy"])
def test_every_group_composes(repo, group):
    assert group in compose(repo / "conf")


@pytest.mark.parametrize("overrides", [["experiment=smoke"], ["model=tiny_conv"], ["features=log_mel"],
                                       ["experiment=tiny"], *[["experiment=smoke", f"model={m}"] for m in
                                                              ("ds_cnn_80", "ds_cnn_s", "ds_cnn_m", "cnn", "tiny_conv")]])
def test_variants_validate(repo, overrides):
    from_dict(compose(repo / "conf", overrides))


def _broken(base: dict, path: str, value) -> dict:
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    ("train.epochs", "ten", "train.epochs: expected an integer"),
    ("train.lr", KeyError, "train.lr: missing"),
    ("model.widht", 3, "unknown key(s) model.widht"),
    ("features.kind", "wavelet", "features.kind: 'wavelet' is not one of"),
    ("dataset.keywords", [True, "no"], "dataset.keywords[0]: expected a string"),
    ("features.fft_size", 256, "features.fft_size: 256 is shorter than the 480-sample window"),
    ("train.augment.speed_range", [1.2, 0.9], "train.augment.speed_range: [1.2, 0.9] is not [low, high]"),
    ("train.augment.speed_range", [0.4, 0.9], "train.augment.speed_range: [0.4, 0.9] is not allowed; it must be "
                                              ">= 0.5 and <= 2"),
    ("train.class_weight_power", 2.0, "train.class_weight_power: 2.0 is not allowed; it must be >= 0 and <= 1"),
    ("model.architecture", "resnet", "model.architecture: 'resnet' is not one of ['cnn', 'ds_cnn', 'tiny_conv']"),
    ("dataset.name", "folder", "unknown key(s) dataset.context, dataset.engine_takes_per_keyword, dataset.espeak_accents"),
    ("train.engine_weights", {"kokoro": 4.0, "festival": 2.0}, "train.engine_weights: no speech engine is "
                                                                 "called festival; they are espeak, flite"),
    ("train.engine_weights", {"kokoro": 0.0}, "train.engine_weights: {'kokoro': 0.0} is not allowed"),
    ("dataset.training_engines", ["kokoro", "pico"], "dataset.training_engines: pico is the held-out engine"),
    ("dataset.engine_takes_per_keyword", {"kokoro": 0}, "dataset.engine_takes_per_keyword: {'kokoro': 0} is not allowed"),
    ("dataset.engine_takes_per_keyword", {"polly": 2}, "dataset.engine_takes_per_keyword: no speech engine is called polly"),
    ("dataset.training_engines", ["kokoro", "polly"], "dataset.training_engines: 'polly' is not one of espeak"),
])
def test_bad_values_name_the_key(smoke_dict, path, value, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        from_dict(_broken(smoke_dict, path, value))


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        load(bad)
    with pytest.raises(ParamsError, match="not found; run `make params`"):
        load(tmp_path / "nope.yaml")
