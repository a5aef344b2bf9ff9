"""Bad input never loses data: one test for each way found to destroy work,
get a traceback, a hang or a wrong success, with the outcome expected
instead. Kept in one place so that the list can grow; each section names
the promise it checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from keyspot.export import ExportError, export
from keyspot.export.c_model import GENERATED_MARK
from keyspot.features import FeatureSpec

REPO = Path(__file__).resolve().parents[1]
GENERATED = "firmware/psoc6/source/generated"


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- outputs that cannot eat work

@pytest.fixture(scope="module")
def export_inputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A small int8 model, its spec and quantize report (test_firmware_core's)."""
    import numpy as np
    from test_firmware_core import _base_spec, _io_quantization, _tiny_int8_model

    root = tmp_path_factory.mktemp("export_inputs")
    base = _base_spec()
    spec = FeatureSpec(**{**base.__dict__, "mean": (0.0,) * base.num_coefficients,
                          "std": (1.0,) * base.num_coefficients})
    calibration = np.random.default_rng(0).standard_normal((8, *spec.shape)).astype(np.float32)
    model = _tiny_int8_model(spec, calibration)
    (root / "model.tflite").write_bytes(model)
    spec.save(root / "spec.json")
    (root / "quantize.json").write_text(json.dumps({"tflm_arena_bytes": 4096, **_io_quantization(model)}))
    return root / "model.tflite", root / "spec.json", root / "quantize.json"


def test_c_export_refuses_a_folder_it_did_not_write(export_inputs, tmp_path):
    """export.out_dir=firmware would have replaced the hand-written tree."""
    mine = tmp_path / "firmware"
    (mine / "psoc6").mkdir(parents=True)
    (mine / "Makefile").write_text("all:\n")
    (mine / "psoc6/main.c").write_text("int main(void) { return 0; }\n")
    before = _tree(mine)
    with pytest.raises(ExportError) as err:
        export(*export_inputs, mine)
    message = str(err.value)
    assert "\n" not in message and f"export.out_dir={mine}" in message and "did not write" in message
    assert _tree(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["firmware"]   # nothing staged beside it


def test_c_export_takes_a_new_an_empty_or_its_own_folder(export_inputs, tmp_path):
    files = export(*export_inputs, tmp_path / "new")
    (tmp_path / "empty").mkdir()
    assert export(*export_inputs, tmp_path / "empty") == files
    assert export(*export_inputs, tmp_path / "new") == files   # its own, again
    assert all(GENERATED_MARK in text[:200] for text in files.values())


def test_c_export_refuses_a_file_or_a_link(export_inputs, tmp_path):
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    for target in ("file", "link"):
        with pytest.raises(ExportError, match="not a folder"):
            export(*export_inputs, tmp_path / target)
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_failed_export_keeps_the_folder_byte_for_byte(export_inputs, tmp_path):
    out = tmp_path / "generated"
    export(*export_inputs, out)
    before = _tree(out)
    model, spec, report = export_inputs
    bad = tmp_path / "quantize.json"
    bad.write_text(json.dumps({**json.loads(report.read_text()), "tflm_arena_bytes": 0}))
    with pytest.raises(ExportError, match="tflm_arena_bytes"):
        export(model, spec, bad, out)
    assert _tree(out) == before


def test_dvc_keeps_the_outputs_a_failed_or_killed_stage_would_lose():
    """DVC deletes a stage's outputs before running it unless they persist:
    the committed generated folder persists, as no DVC cache could bring it
    back, and so do train's outputs, which train installs as one set only
    when it completes (tests/test_train.py kills one mid-epoch)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def persisted(stage):
        return {next(iter(o)) for o in stages[stage]["outs"] if isinstance(o, dict)
                and next(iter(o.values())).get("persist")}

    assert persisted("c-export") == {"${export.out_dir}"}
    assert persisted("train") == {"models/model.keras", "models/saved_model",
                                  "reports/train/summary.json", "reports/train/history.csv"}
    assert all(not persisted(stage) for stage in stages if stage not in ("c-export", "train"))


def _install_set(root: Path, tag: str) -> dict[Path, Path]:
    staged = root / f"staged-{tag}"
    (staged / "saved_model").mkdir(parents=True)
    (staged / "model.keras").write_text(tag)
    (staged / "saved_model" / "saved_model.pb").write_text(tag)
    return {staged / "model.keras": root / "models" / "model.keras",
            staged / "saved_model": root / "models" / "saved_model"}


def test_train_outputs_are_installed_as_one_set_or_not_at_all(tmp_path, monkeypatch):
    """What train writes replaces the previous model, SavedModel and reports
    together; a failure half-way puts every previous one back."""
    from keyspot import artifacts

    artifacts.install_together(_install_set(tmp_path, "old"))
    before = _tree(tmp_path / "models")
    replace = os.replace

    def fail_on_the_second_install(src, dest):
        if Path(src) == tmp_path / "staged-new" / "saved_model":   # model.keras is in by then
            raise OSError("disk full")
        replace(src, dest)

    monkeypatch.setattr(artifacts.os, "replace", fail_on_the_second_install)
    with pytest.raises(OSError, match="disk full"):
        artifacts.install_together(_install_set(tmp_path, "new"))
    monkeypatch.setattr(artifacts.os, "replace", replace)
    assert _tree(tmp_path / "models") == before
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["model.keras", "saved_model"]

    # A kill in the middle of an install leaves the renamed-aside set behind;
    # the next install clears it.
    (tmp_path / "models" / ".saved_model.4242.old").mkdir()
    (tmp_path / "models" / ".model.keras.4242.old").write_text("killed")
    artifacts.install_together(_install_set(tmp_path, "newer"))
    assert (tmp_path / "models" / "model.keras").read_text() == "newer"
    assert (tmp_path / "models" / "saved_model" / "saved_model.pb").read_text() == "newer"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["model.keras", "saved_model"]


def _git_status(root: Path, env) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root, env=env,
                          capture_output=True, text=True, check=True).stdout


def _restore(root: Path, env) -> None:
    subprocess.run(["git", "checkout", "--", "."], cwd=root, env=env, capture_output=True, check=True)
    subprocess.run(["dvc", "checkout", "-q", "--force"], cwd=root, env=env, capture_output=True)


@pytest.mark.slow
def test_dvc_exp_run_with_out_dir_firmware_changes_nothing(pipeline):
    """`dvc exp run -S export.out_dir=firmware` on the reproduced smoke repo:
    c-export refuses with one line; not a file under firmware/ changes."""
    root, env = pipeline["root"], pipeline["env"]
    before, status = _tree(root / "firmware"), _git_status(root, env)
    try:
        run = subprocess.run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "export.out_dir=firmware"],
                             cwd=root, env=env, capture_output=True, text=True)
        assert run.returncode != 0
        refusal = [line for line in run.stderr.splitlines() if line.startswith("c-export: ")]
        assert len(refusal) == 1 and "export.out_dir=firmware: holds" in refusal[0], run.stderr[-2000:]
        assert "Traceback" not in run.stderr
        assert _tree(root / "firmware") == before
        changed = {line[3:] for line in _git_status(root, env).splitlines()} - \
            {line[3:] for line in status.splitlines()}
        assert changed <= {"params.yaml"}, changed
    finally:
        _restore(root, env)


@pytest.mark.slow
@pytest.mark.parametrize("overrides, bad_file, first_line", [
    (["train.epochs=ten"], None,
     "Error merging override train.epochs=ten: Value 'ten' of type 'str' could not be converted to Integer"),
    (["model.widht=3"], None, "Could not override 'model.widht'"),
    (["model=bad"], "widht: 3\n", "In 'model/bad': ConfigKeyError raised while composing config"),
], ids=["type", "unknown-key", "unknown-key-in-conf"])
def test_dvc_exp_run_refuses_a_bad_key_or_type_while_composing(pipeline, overrides, bad_file, first_line):
    """DVC composes conf/ against keyspot's schema (hydra_plugins/keyspot_schema):
    a bad key or type stops `dvc exp run` before any stage, naming it."""
    root, env = pipeline["root"], pipeline["env"]
    status = _git_status(root, env)
    bad = root / "conf/model/bad.yaml"
    if bad_file:
        bad.write_text("defaults:\n  - /schema/model/ds_cnn@_here_\n  - _self_\n" + bad_file)
    try:
        run = subprocess.run(["dvc", "exp", "run", "-S", "experiment=smoke", *[f"-S{o}" for o in overrides]],
                             cwd=root, env=env, capture_output=True, text=True)
        errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
        assert run.returncode != 0 and len(errors) == 1 and first_line in errors[0], run.stderr[-2000:]
        assert "model.widht" in run.stderr or "train.epochs" in run.stderr
        assert "Running stage" not in run.stdout
        bad.unlink(missing_ok=True)
        assert _git_status(root, env) == status
    finally:
        bad.unlink(missing_ok=True)
        _restore(root, env)


@pytest.mark.slow
def test_a_failed_c_export_under_dvc_keeps_the_committed_folder_and_the_alias(pipeline):
    """A retrained model whose export fails: the committed generated folder
    stays byte for byte, and the MLflow alias stays on the model that was
    exported last."""
    import mlflow

    root, env = pipeline["root"], pipeline["env"]
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    name = "keyspot-synthetic-ds_cnn_s"
    candidate = client.get_model_version_by_alias(name, "candidate").version
    before = _tree(root / GENERATED)
    foreign = root / GENERATED / "notes.txt"
    foreign.write_text("my notes\n")   # the folder is no longer c-export's alone
    try:
        run = subprocess.run(["dvc", "exp", "run", "-S", "experiment=smoke", "-S", "train.lr=0.002"],
                             cwd=root, env=env, capture_output=True, text=True)
        assert run.returncode != 0 and "Running stage 'quantize'" in run.stdout, run.stdout[-2000:]
        assert "c-export: error: export.out_dir=firmware/psoc6/source/generated: holds notes.txt" in run.stderr
        assert _tree(root / GENERATED) == {**before, "notes.txt": _tree(root / GENERATED)["notes.txt"]}
        versions = client.search_model_versions(f"name = '{name}'")
        assert len(versions) >= 2, "quantize registered the new model"
        assert client.get_model_version_by_alias(name, "candidate").version == candidate
    finally:
        foreign.unlink(missing_ok=True)
        _restore(root, env)
    assert _tree(root / GENERATED) == before


def test_the_saved_model_export_dies_with_its_stage(tmp_path):
    """kill -9 of a training while its SavedModel export runs in a child
    process: the child ends too, and writes nothing after its stage is gone."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    keras_path = tmp_path / "model.keras"
    model.save(keras_path)
    out = tmp_path / "saved_model"
    parent = subprocess.Popen([sys.executable, "-c",
                               "import sys; from pathlib import Path; "
                               "from keyspot.keras_files import export_saved_model_in_fresh_process as e; "
                               "e(Path(sys.argv[1]), Path(sys.argv[2]))", str(keras_path), str(out)],
                              start_new_session=True)
    child = None
    deadline = time.monotonic() + 60
    while child is None and time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"keyspot.keras_files" in cmdline and str(out).encode() in cmdline:
                    child = int(pid)
        time.sleep(0.05)
    assert child is not None, "the export child never started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(200):
        if not Path(f"/proc/{child}").exists() or b"Z" in Path(f"/proc/{child}/stat").read_bytes().split()[2]:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the export child outlived its stage")
    time.sleep(1)
    assert not out.exists()


# ---------------------------------------------------------------- config validated before any work

BAD_VALUES = [
    ("train.lr=-1", "train.lr: -1.0 is not allowed; it must be > 0"),
    ("train.lr=nan", "train.lr: nan is not a finite number"),
    ("train.lr=inf", "train.lr: inf is not a finite number"),
    ("train.batch_size=0", "train.batch_size: 0 is not allowed; it must be >= 1"),
    ("features.hop_ms=0", "features.hop_ms: 0.0 is not allowed; it must be > 0"),
    ("features.window_ms=0", "features.window_ms: 0.0 is not allowed; it must be > 0"),
    ("features.log_floor=0", "features.log_floor: 0.0 is not allowed; it must be > 0"),
    ("features.log_floor=-1", "features.log_floor: -1.0 is not allowed; it must be > 0"),
    ("features.mel_fmin=9000", "features.mel_fmin: 9000 Hz must be below features.mel_fmax (8000 Hz)"),
    ("dataset.sample_rate=8000",
     "features.mel_fmax: 8000 Hz is above the Nyquist frequency of dataset.sample_rate (8000 Hz); set it to 4000 or less"),
    ("train.label_smoothing=2", "train.label_smoothing: 2.0 is not allowed; it must be >= 0 and < 1"),
    ("train.patience=-1", "train.patience: -1 is not allowed; it must be >= 0"),
    ("features.fft_size=1000", "features.fft_size: 1000 is not a power of two"),
    ("dataset.sample_rate=0", "dataset.sample_rate: 0 is not allowed; it must be >= 8000"),
    ("export.recognizer.detection_threshold=300",
     "export.recognizer.detection_threshold: 300 is not allowed; it must be >= 0 and <= 255"),
    ("calibrate.minimum_count=[]",
     "calibrate.minimum_count: lists no value to try; give at least one, or set calibrate.enabled=false"),
    ("streams.keyword_fraction=1.5", "streams.keyword_fraction: 1.5 is not allowed; it must be >= 0 and <= 1"),
    ("nosuchkey=1", "Could not override 'nosuchkey'"),
    # Refused by the schema while Hydra composes (keyspot/schema.py).
    ("train.epochs=ten", "Error merging override train.epochs=ten: Value 'ten' of type 'str' could not be "
                         "converted to Integer (train.epochs)"),
    ("model.widht=3", "Could not override 'model.widht'"),
    ("model.blocks=2 model=tiny_conv", "Could not override 'model.blocks'"),
    ("model=nonexistent", "Could not find 'model/nonexistent'; Available options in 'model': cnn, "),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_keyspot_compose_refuses_a_bad_value_in_one_line(override, message, tmp_path):
    out = tmp_path / "params.yaml"
    run = subprocess.run([sys.executable, "-m", "keyspot.cli", "compose", "--conf", str(REPO / "conf"),
                          "-o", str(out), *override.split()], capture_output=True, text=True)
    assert run.returncode == 2 and not out.exists()
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr[-2000:]


@pytest.mark.parametrize("override, message", [case for case in BAD_VALUES if "=" in case[0]
                                                 and case[0].split("=")[0].count(".") and " " not in case[0]][:6],
                         ids=lambda v: v if "=" in str(v) else "")
def test_a_stage_refuses_a_bad_params_yaml_before_any_work(override, message, tmp_path, smoke_dict):
    """`dvc exp run -S` composes params.yaml without keyspot: the first stage
    stops on it with one line, and writes nothing."""
    from keyspot.compose import write_params

    key, value = override.split("=")
    data = json.loads(json.dumps(smoke_dict))
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = yaml.safe_load(value) if value not in ("nan", "inf") else float(value)
    write_params(data, tmp_path / "params.yaml")
    run = subprocess.run([sys.executable, str(REPO / "stages/fetch.py")], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_folder_dataset_with_one_class_is_refused_before_any_work(tmp_path, smoke_dict):
    import numpy as np
    import soundfile

    from keyspot.compose import compose
    from keyspot.data import folder
    from keyspot.params import from_dict

    root = tmp_path / "audio"
    (root / "yes").mkdir(parents=True)
    for i in range(6):
        soundfile.write(root / "yes" / f"{i}.wav", np.zeros(16000, dtype=np.int16), 16000)
    params = from_dict(compose(REPO / "conf", ["dataset=folder", f"dataset.root={root}"]))
    with pytest.raises(folder.FolderError) as err:
        folder.fetch(params.dataset, 0, tmp_path / "raw", progress=False)
    assert str(err.value) == (f"{root} gives 1 class (yes); a classifier needs at least two: add a folder per "
                              "class, or keep the other folders as _unknown_ (dataset.other_folders=unknown)")
    assert not (tmp_path / "raw").exists()


# ---------------------------------------------------------------- one audio reader, one set of rules

def _wav(samples, rate: int, subtype: str = "PCM_16") -> bytes:
    import io

    import numpy as np
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, np.asarray(samples), rate, subtype=subtype, format="WAV")
    return out.getvalue()


def _bad_files(folder: Path) -> dict[str, str]:
    """File name -> what the one line about it must say."""
    import numpy as np

    tone = (np.sin(np.arange(16000) / 5) * 0.5).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "truncated16.wav": (_wav(tone, 16000)[:1000], "truncated: the data chunk declares 32000 bytes"),
        "truncated24.wav": (_wav(tone, 16000, "PCM_24")[:1000], "truncated: the data chunk declares 48000 bytes"),
        "one_hertz.wav": (_wav(tone[:500], 1), "sample rate 1 Hz is outside 1000..384000 Hz"),
        "nan.wav": (_wav(np.full(800, np.nan, dtype=np.float32), 16000, "FLOAT"), "NaN or infinite samples"),
        # A JUNK chunk, then a fmt chunk cut after 4 of its 16 bytes: 44 bytes in all.
        "cut_fmt.wav": (b"RIFF\x24\x00\x00\x00WAVE" + b"JUNK\x04\x00\x00\x00abcd" + b"fmt \x10\x00\x00\x00"
                        + b"\x01\x00\x01\x00", "not readable audio"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    os.mkfifo(folder / "fifo.wav")
    expected = {name: why for name, (_, why) in files.items()}
    expected["fifo.wav"] = "not a regular file"
    return expected


def test_the_audio_reader_names_each_bad_file_and_reads_the_rest(tmp_path):
    import numpy as np

    from keyspot import audio

    expected = _bad_files(tmp_path)
    (tmp_path / "good.wav").write_bytes(_wav(np.zeros(16000, dtype=np.int16), 16000))
    for name, why in expected.items():
        for read in (lambda p: audio.decode(p), lambda p: audio.load_clip(p, 16000, 16000)):
            with pytest.raises(audio.AudioError) as err:
                read(tmp_path / name)
            assert str(err.value).startswith(f"{tmp_path / name}: ") and why in str(err.value)
            assert "\n" not in str(err.value)
    assert audio.load_clip(tmp_path / "good.wav", 16000, 16000).shape == (16000,)
    # The same bytes as a request body: the same rule, named as the body.
    with pytest.raises(audio.AudioError, match="audio body: not readable audio .truncated"):
        audio.decode((tmp_path / "truncated16.wav").read_bytes())


def test_a_folder_dataset_skips_each_bad_file_with_its_reason(tmp_path):
    import numpy as np

    from keyspot.compose import compose
    from keyspot.data import folder
    from keyspot.params import from_dict

    root = tmp_path / "audio"
    expected = _bad_files(root / "yes")
    for label in ("yes", "no"):
        (root / label).mkdir(exist_ok=True)
        for i in range(12):
            (root / label / f"ok{i}.wav").write_bytes(_wav(np.full(16000, i * 100, dtype=np.int16), 16000))
    odd = os.fsdecode(b"caf\xe9.wav")   # a name that is not UTF-8
    (root / "no" / odd).write_bytes(_wav(np.zeros(16000, dtype=np.int16), 16000))
    params = from_dict(compose(REPO / "conf", ["dataset=folder", f"dataset.root={root}", "dataset.workers=1",
                                               "dataset.split_fractions={val: 0.2, test: 0.2}"]))
    summary = folder.fetch(params.dataset, 0, tmp_path / "raw", progress=False)
    reasons = dict(summary.skipped)
    for name, why in expected.items():
        assert why in reasons[f"yes/{name}"], (name, reasons)
    assert f"no/{odd}" not in reasons and summary.clips == 25
    manifest = (tmp_path / "raw/manifest.csv").read_text(encoding="utf-8")
    assert "caf\\xe9" in manifest   # its speaker, printable

    # reports/data.json names every skipped file relative to the dataset root,
    # and carries no path of this machine (it is a DVC metric, compared across machines).
    from keyspot.data import report

    data = report.build(summary, params.dataset, tmp_path / "raw")
    assert {e["path"] for e in data["skipped"]} >= {f"yes/{name}" for name in expected}
    assert str(tmp_path) not in json.dumps(data) and str(root) not in json.dumps(data)


@pytest.mark.slow
def test_predict_names_each_bad_file_lists_it_in_json_and_goes_on(pipeline, tmp_path):
    root, env = pipeline["root"], pipeline["env"]
    expected = _bad_files(tmp_path / "bad")
    good = sorted((root / "data/raw/clips/yes").glob("*.wav"))[0]
    odd = tmp_path / os.fsdecode(b"caf\xe9.wav")
    odd.write_bytes(good.read_bytes())
    paths = [tmp_path / "bad" / name for name in sorted(expected)] + [good, odd]
    run = subprocess.run(["keyspot", "predict", "--json", *map(str, paths)], cwd=root,
                         env={**env, "PYTHONIOENCODING": "utf-8"}, capture_output=True, text=True,
                         errors="backslashreplace", timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    listed = json.loads(run.stdout)
    assert len(listed) == len(paths)
    for entry, name in zip(listed, sorted(expected), strict=False):
        assert expected[name] in entry["error"], entry
    assert [("label" in e) for e in listed[-2:]] == [True, True] and listed[-1]["path"].endswith("caf\\xe9.wav")
    lines = run.stderr.strip().splitlines()
    assert len(lines) == len(expected)
    bad_spec = subprocess.run(["keyspot", "predict", "--spec", str(tmp_path), str(good)], cwd=root, env=env,
                              capture_output=True, text=True)
    assert bad_spec.returncode == 2 and bad_spec.stderr.count("\n") == 1 and "is a folder" in bad_spec.stderr


# ---------------------------------------------------------------- a server that bounds its work

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_serve import Server, build_workdir

    workdir = build_workdir(tmp_path_factory.mktemp("serve"))
    srv = Server(workdir["root"])
    yield srv
    srv.stop()


def _npy(array) -> bytes:
    import io

    import numpy as np

    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _server_cases() -> list[tuple[str, bytes, str, int, str]]:
    """(name, body, content type, status, what the error says)."""
    import numpy as np

    huge_header = _npy(np.zeros((1, 1), dtype=np.int16)).replace(b"(1, 1)", b"(1000000000000, 1)")
    frames, coefficients = 49, 10
    return [
        ("a batch of 20,000 one-sample clips", _npy(np.zeros((20000, 1), dtype=np.int16)),
         "application/x-npy", 413, "20000 clips in one request; send at most 64"),
        ("features of 1e300", json.dumps({"features": np.full((frames, coefficients), 1e300).tolist()}).encode(),
         "application/json", 400, "NaN or infinite values (as float32)"),
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "not JSON"),
        ("a 5000-digit integer", b'{"pcm": [' + b"9" * 5000 + b"]}", "application/json", 400, "not JSON"),
        ("an npy header of 10^12 rows", huge_header, "application/x-npy", 400, "not a .npy array"),
        ("JSON booleans as PCM", b'{"pcm": [true, false, true]}', "application/json", 400,
         '"pcm" must be a (nested) list of numbers'),
        ("a body that is not audio", b"these are not samples", "audio/wav", 400, "not readable audio"),
    ]


@pytest.mark.parametrize("case", range(7), ids=[c[0] for c in _server_cases()])
def test_the_server_answers_bad_bodies_with_4xx_json(server, case):
    name, body, content_type, status, says = _server_cases()[case]
    got, data, headers = server.request("POST", "/invocations", body, content_type)
    answer = json.loads(data)   # strict JSON: no NaN
    assert (got, headers["Content-Type"]) == (status, "application/json") and says in answer["error"], answer
    assert "0x" not in answer["error"] and "object at" not in answer["error"]
    assert server.request("GET", "/ping")[0] == 200


def _workers_rss_mib(arbiter: int) -> float:
    """Resident memory of the server's worker processes (the arbiter's children), from /proc."""
    total_kib = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == arbiter:   # the field after the state is the parent's pid
                status = (stat.parent / "status").read_text()
                total_kib += int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue   # a process that ended while it was read
    return total_kib / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads worker memory from Linux's /proc")
def test_the_batch_cap_bounds_worker_memory(server):
    """20,000 one-sample clips once took 16.8 s and 5.96 GB of worker RSS, and
    the worker kept 651 MB. Refused now, as is a batch over the cap; the
    largest allowed batch answers, and the workers stay near where they were."""
    import numpy as np

    from keyspot.serve.handler import MAX_BATCH

    for _ in range(4):   # every worker past its first inference
        assert server.request("POST", "/invocations", _npy(np.zeros((1, 16000), np.int16)), "application/x-npy")[0] == 200
    before = _workers_rss_mib(server.proc.pid)
    start = time.monotonic()
    refused = server.request("POST", "/invocations", _npy(np.zeros((20000, 1), np.int16)), "application/x-npy")
    over = server.request("POST", "/invocations", _npy(np.zeros((MAX_BATCH + 1, 16000), np.int16)),
                          "application/x-npy")
    largest = server.request("POST", "/invocations", _npy(np.zeros((MAX_BATCH, 16000), np.int16)),
                             "application/x-npy")
    took = time.monotonic() - start
    after = _workers_rss_mib(server.proc.pid)
    print(f"\nworkers' RSS {before:.0f} MiB before, {after:.0f} MiB after a refused 20,000-clip batch, a refused "
          f"{MAX_BATCH + 1}-clip one and an answered {MAX_BATCH}-clip one ({took:.2f} s)")
    assert (refused[0], over[0], largest[0]) == (413, 413, 200)
    assert len(json.loads(largest[1])["predictions"]) == MAX_BATCH
    assert after - before < 100, (before, after)


def _raw(port: int, head: bytes, body: bytes = b"", wait: float = 30.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_a_declared_length_beyond_the_limit_is_refused_before_reading(server):
    start = time.monotonic()
    reply = _raw(server.port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                 b"Content-Length: 1000000000000\r\n\r\n", b"RIFF")
    assert time.monotonic() - start < 2 and reply.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b"over this server's limit" in reply


def test_a_bad_chunk_size_is_a_400(server):
    reply = _raw(server.port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n", b"zz\r\nabc\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    json.loads(reply.split(b"\r\n\r\n", 1)[1])


SLOW_CLIENTS = 4


def test_slow_clients_do_not_starve_ping(server):
    """Clients that declare 1000 bytes and send 10, twice as many as stalled
    both sync workers before (/ping then took 29.8 s): /ping keeps answering,
    and each slow client gets a 408 within the body timeout, not a 500 at the
    worker timeout."""
    import socket
    import threading

    from keyspot.serve.app import BODY_TIMEOUT_S

    replies, sockets = [], []

    def slow():
        s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        sockets.append(s)
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                  b"Content-Length: 1000\r\n\r\n0123456789")
        replies.append(s.recv(65536))

    threads = [threading.Thread(target=slow) for _ in range(SLOW_CLIENTS)]
    for t in threads:
        t.start()
    begin = time.monotonic()
    pings, deadline = [], begin + BODY_TIMEOUT_S + 2
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        assert server.request("GET", "/ping")[0] == 200
        pings.append((t0 - begin, time.monotonic() - t0))
        time.sleep(0.1)
    worst = max(took for _, took in pings)
    for t in threads:
        t.join(timeout=30)
    for s in sockets:
        s.close()
    print(f"\n/ping under {SLOW_CLIENTS} slow clients: slowest answer {worst * 1000:.0f} ms; replies "
          f"{sorted({r.split(b' ')[1].decode() for r in replies if r})}")
    # A worker stalled by a slow client held /ping until the worker timeout
    # (29.8 s, then a 500); later, gunicorn's lingering close of each 408'd
    # connection held it 2 s per slow client (JsonErrorWorker.handle).
    late = [(round(at, 2), round(took, 3)) for at, took in pings if took > 1.0]
    assert not late, late
    assert len(replies) == SLOW_CLIENTS and all(r.startswith(b"HTTP/1.1 408") for r in replies), replies


def test_serve_refuses_a_bad_port_or_host_in_one_line(tmp_path):
    for args, says in ((["--port", "99999"], "--port 99999: a port is 0..65535"),
                       (["--host", "999.1.1.1"], "check --host")):
        run = subprocess.run([sys.executable, "-m", "keyspot.cli", "serve", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode != 0 and "Traceback" not in run.stderr and says in run.stderr, run.stderr


# ---------------------------------------------------------------- secrets and paths

def test_credentials_in_uris_are_redacted():
    from keyspot.redact import redact

    assert redact("no http://alice:S3cretPw@example.com:5000/x here") == "no http://alice:***@example.com:5000/x here"
    assert redact("s3://key:sec/ret@bucket") == "s3://key:sec/ret@bucket"   # a path, not credentials
    assert redact("http://example.com/a:b@c") == "http://example.com/a:b@c"


def test_a_stage_that_fails_on_a_tracking_uri_does_not_print_its_password(tmp_path):
    """The URI in MLflow's own exception, traceback and log lines."""
    code = ("from keyspot import stage\n"
            "def run():\n"
            "    import mlflow\n"
            "    mlflow.set_tracking_uri('http://alice:S3cretPw@127.0.0.1:9/')\n"
            "    mlflow.search_experiments()\n"
            "stage.main('train', run)\n")
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode != 0 and "127.0.0.1" in run.stderr, run.stderr[-2000:]
    assert "S3cretPw" not in run.stderr and "alice:***@" in run.stderr
