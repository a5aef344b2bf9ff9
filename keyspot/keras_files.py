"""Saving Keras models so that the same weights give the same bytes.

Keras leaves two things to chance: `.keras` files carry a save date and
Python object ids (`shared_object_id`, a memory address), and the SavedModel
export orders variables as the traced function captured them, which follows
memory layout; the SavedModel fingerprint holds a random UUID. All change with the path a repository is cloned to, so
`dvc repro` in a fresh clone would rewrite dvc.lock. Written for the pinned
Keras (see requirements.lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from keyspot import artifacts


def _renumber_shared_objects(config: bytes) -> bytes:
    """Replace object ids by their order of first appearance; sharing is kept."""
    numbers: dict[int, int] = {}

    def walk(node):
        if isinstance(node, dict):
            if "shared_object_id" in node:
                node["shared_object_id"] = numbers.setdefault(node["shared_object_id"], len(numbers))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    data = json.loads(config)
    walk(data)
    return json.dumps(data, sort_keys=True).encode()


def _drop_save_date(metadata: bytes) -> bytes:
    data = json.loads(metadata)
    data.pop("date_saved", None)
    return json.dumps(data, sort_keys=True).encode()


def load_model(path: Path, **kwargs):
    """keras.models.load_model, with keyspot.portable_ops installed first: the
    same inputs give the same probabilities on every x86-64 CPU."""
    from keyspot import portable_ops
    from keyspot.quiet_tf import quietly_import

    keras = quietly_import("keras")
    portable_ops.install()
    return keras.models.load_model(path, **kwargs)


def save_keras(model, path: Path) -> None:
    """model.save(), reproducible and atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    artifacts.normalise_zip(tmp, {"config.json": _renumber_shared_objects,
                                  "metadata.json": _drop_save_date})
    os.replace(tmp, path)


@contextmanager
def _variables_sorted_by_name():
    from keras.src.export import saved_model_export_archive as archive

    original = archive._list_variables_used_by_fns

    def listed_by_name(fns):
        trainable, non_trainable = original(fns)
        names = [v.name for v in trainable + non_trainable]
        if len(set(names)) != len(names):
            raise RuntimeError("variables with the same name: their export order would be arbitrary")
        return sorted(trainable, key=lambda v: v.name), sorted(non_trainable, key=lambda v: v.name)

    archive._list_variables_used_by_fns = listed_by_name
    try:
        yield
    finally:
        archive._list_variables_used_by_fns = original


def _fix_fingerprint_uuid(saved_model: Path) -> None:
    """TensorFlow stamps each SavedModel's fingerprint with a random UUID;
    derive it from the content hashes the fingerprint already holds."""
    from tensorflow.core.protobuf import fingerprint_pb2

    path = saved_model / "fingerprint.pb"
    if not path.exists():
        return
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    content = (fingerprint.saved_model_checksum, fingerprint.graph_def_program_hash,
               fingerprint.signature_def_hash, fingerprint.saved_object_graph_hash,
               fingerprint.checkpoint_hash)
    digest = hashlib.sha256(repr(content).encode()).digest()
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))
    artifacts.write_bytes(path, fingerprint.SerializeToString(deterministic=True))


def export_saved_model(model, path: Path) -> None:
    """model.export() with variables in name order and a content-derived
    fingerprint UUID, replacing `path` atomically."""
    with artifacts.staged_dir(path) as tmp, _variables_sorted_by_name():
        shutil.rmtree(tmp)
        model.export(str(tmp), verbose=False)
        _fix_fingerprint_uuid(tmp)


def export_saved_model_in_fresh_process(keras_path: Path, path: Path) -> None:
    """`export_saved_model` of the model saved at `keras_path`, run in a new
    Python process.

    saved_model.pb names its graph functions after a per-process counter
    that every eager TensorFlow operation advances, so one model exported
    after different histories (a resumed training, per-epoch checkpoints, a
    SageMaker job) would get other names. A fresh process that only loads
    and exports always has the same history, hence the same bytes.
    """
    done = subprocess.run([sys.executable, "-m", "keyspot.keras_files", str(keras_path), str(path)],
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", PARENT_ENV: str(os.getpid())})
    if done.returncode != 0:
        raise RuntimeError(f"exporting {keras_path} as a SavedModel failed:\n{done.stderr[-3000:]}")


PARENT_ENV = "KEYSPOT_EXPORT_PARENT"


def _die_with_parent() -> None:
    """End this process when the stage that started it ends, however it ends
    (kill -9 included), so that no export writes after its stage is gone.
    Linux's parent-death signal; elsewhere a no-op."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:   # the parent died before the signal was armed
        os._exit(1)


def _export_main(argv: list[str]) -> None:
    _die_with_parent()
    import keras

    from keyspot import portable_ops

    # Batch normalisation as training ran it; Softmax stays the op TFLite
    # converts.
    portable_ops.install(softmax=False)
    keras_path, out = argv
    # Dropout layers get new random-generator states when a model is loaded,
    # and the SavedModel carries them: seed them so the bytes are the same.
    keras.utils.set_random_seed(0)
    export_saved_model(keras.models.load_model(keras_path, compile=False), Path(out))


if __name__ == "__main__":
    _export_main(sys.argv[1:])
