"""What adding to keyspot takes: a dataset source is one module and one
config file, an architecture the same, and a hyperparameter one field.

Each test copies keyspot/, stages/ and conf/ into a scratch folder, adds
exactly those files there, and runs keyspot from the copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TONES = '''
"""Pure tones, one pitch per class: a dataset source in one module."""
import dataclasses
import json
from pathlib import Path

import numpy as np

from keyspot import audio
from keyspot.data.manifest import Row, write_manifest
from keyspot.data.source import Source, Summary
from keyspot.schema import Range, setting


@dataclasses.dataclass
class TonesDataset:
    name: str = "tones"
    pitches: dict[str, float] = setting({"low": 300.0, "high": 900.0}, allowed=Range(low=20))
    clips_per_split: int = setting(2, allowed=Range(low=1))
    sample_rate: int = 16000
    clip_seconds: float = 1.0


def fetch(dataset, seed, out):
    out = Path(out)
    rows, counts = [], {}
    t = np.arange(round(dataset.sample_rate * dataset.clip_seconds)) / dataset.sample_rate
    for split in ("train", "val", "test"):
        counts[split] = {}
        for label, hz in dataset.pitches.items():
            for i in range(dataset.clips_per_split):
                path = f"clips/{label}/{split}{i}.wav"
                (out / path).parent.mkdir(parents=True, exist_ok=True)
                audio.write_wav(out / path, audio.to_int16(0.3 * np.sin(2 * np.pi * hz * t)), dataset.sample_rate)
                rows.append(Row(path, label, split, f"{split}{i}"))
            counts[split][label] = dataset.clips_per_split
    write_manifest(out / "manifest.csv", rows)
    (out / "labels.json").write_text(json.dumps(list(dataset.pitches)) + "\\n")
    return Summary(out, "tones", counts, [], [])


SOURCE = Source("tones", TonesDataset, fetch)
'''

WIDE = '''
"""One dense layer over the whole feature map: an architecture in one module."""
import dataclasses

from keyspot.models import Architecture
from keyspot.schema import Range, setting


@dataclasses.dataclass
class Wide:
    name: str = "wide"
    architecture: str = "wide"
    units: int = setting(32, allowed=Range(low=1))


def build(p, input_shape, num_labels):
    import keras

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(p.units, activation="relu")(x)
    outputs = keras.layers.Dense(num_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=p.name)


ARCHITECTURE = Architecture("wide", Wide, build)
'''


def _copy(tmp: Path) -> Path:
    root = tmp / "repo"
    for part in ("keyspot", "stages", "conf", "hydra_plugins"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _added(root: Path) -> list[str]:
    """The files of the copy that the checkout does not have."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.name != "params.yaml"
                  and not (REPO / p.relative_to(root)).exists())


def test_a_dataset_source_is_one_module_and_one_config_file(tmp_path):
    root = _copy(tmp_path)
    (root / "keyspot/data/tones.py").write_text(textwrap.dedent(TONES))
    (root / "conf/dataset/tones.yaml").write_text("defaults:\n  - /schema/dataset/tones@_here_\n  - _self_\n"
                                                  "clips_per_split: 3\n")
    assert _added(root) == ["conf/dataset/tones.yaml", "keyspot/data/tones.py"]

    bad = _run(root, "-m", "keyspot.cli", "compose", "dataset=tones", "dataset.clips_per_split=many")
    assert bad.returncode == 2 and "dataset.clips_per_split" in bad.stderr, bad.stderr
    made = _run(root, "-m", "keyspot.cli", "compose", "dataset=tones")
    assert made.returncode == 0, made.stderr
    fetch = _run(root, "stages/fetch.py")
    assert fetch.returncode == 0, fetch.stderr
    assert "fetch: 18 clips (6 train, 6 val, 6 test) from tones" in fetch.stdout
    assert json.loads((root / "data/raw/labels.json").read_text()) == ["low", "high"]


def test_an_architecture_is_one_module_and_one_config_file(tmp_path):
    root = _copy(tmp_path)
    (root / "keyspot/models/wide.py").write_text(textwrap.dedent(WIDE))
    (root / "conf/model/wide.yaml").write_text("defaults:\n  - /schema/model/wide@_here_\n  - _self_\nunits: 16\n")
    assert _added(root) == ["conf/model/wide.yaml", "keyspot/models/wide.py"]

    made = _run(root, "-m", "keyspot.cli", "compose", "model=wide")
    assert made.returncode == 0, made.stderr
    built = _run(root, "-c", "from keyspot import models, params\n"
                             "p = params.load()\n"
                             "m = models.build(p.model, (49, 10), 12)\n"
                             "print(type(p.model).__name__, m.count_params())")
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == ["Wide", str(490 * 16 + 16 + 16 * 12 + 12)]


def test_a_hyperparameter_is_one_field_with_its_default(tmp_path):
    """A new field of DS-CNN reaches every model config that uses DS-CNN,
    with its default, without editing conf/."""
    root = _copy(tmp_path)
    ds_cnn = root / "keyspot/models/ds_cnn.py"
    text = ds_cnn.read_text()
    anchor = "    dropout: float = setting(0.2"
    assert anchor in text
    ds_cnn.write_text(text.replace(anchor, "    pool: str = setting(\"average\", choices=(\"average\", \"max\"))\n"
                                   + anchor))
    for model in ("ds_cnn_s", "ds_cnn_m"):
        made = _run(root, "-m", "keyspot.cli", "compose", f"model={model}")
        assert made.returncode == 0, made.stderr
        assert "  pool: average\n" in (root / "params.yaml").read_text()
    bad = _run(root, "-m", "keyspot.cli", "compose", "model.pool=median")
    assert bad.returncode == 2 and "model.pool: 'median' is not one of ['average', 'max']" in bad.stderr
