"""The model card and the headline metrics, from small reports written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyspot import model_card
from keyspot.export import device_ram

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _recall(values):
    return {label: {"float": v, "int8": v - 0.01} for label, v in zip(LABELS, values, strict=True)}


@pytest.fixture
def reports(tmp_path) -> Path:
    root = tmp_path / "reports"
    (root / "eval").mkdir(parents=True)
    metrics = {
        "test": {"accuracy": 0.9, "int8_accuracy": 0.89, "examples": 40, "recall": _recall([1.0, 0.9, 0.95, 0.7])},
        "test_engine": {"accuracy": 0.6, "int8_accuracy": 0.58, "examples": 20,
                        "recall": _recall([1.0, 0.8, 0.3, 0.5])},
        "quiet": {"examples": 8, "keyword_rate": 0.0, "int8_keyword_rate": 0.125},
        "model": {"params": 1234, "macs": 56789},
    }
    (root / "metrics.json").write_text(json.dumps(metrics))
    (root / "quantize.json").write_text(json.dumps({"labels": LABELS, "model_bytes": 5000,
                                                    "tflm_arena_bytes": 2048, "tflm_arena_bytes_measured": 2000}))
    chain = [device_ram.Buffer("audio ring", "ring", "psoc6/source/audio_provider.c", 32000)]
    (root / "firmware.json").write_text(json.dumps(
        device_ram.report("tflm", 5000, device_ram.model_buffers("tflm", 2048), chain)))
    (root / "stream.json").write_text(json.dumps({
        "recognizer": {"average_window_ms": 500, "detection_threshold": 200, "minimum_count": 2,
                       "suppression_ms": 1000},
        "test": {"minutes": 20.0, "keywords": 50, "false_reject_rate": 0.1, "false_accepts_per_hour": 1.5,
                 "latency_ms_median": 400.0}}))
    (root / "data.json").write_text(json.dumps({"clips": {"train": 100, "val": 20, "test": 40}}))
    header = "path,speaker,actual,predicted,probability,actual_id,predicted_id,int8_predicted,int8_probability\n"
    rows = ["a.wav,s1,no,yes,0.6,3,2,yes,0.6", "b.wav,s1,no,yes,0.7,3,2,yes,0.7", "c.wav,s2,yes,no,0.6,2,3,yes,0.9",
            "d.wav,s2,yes,yes,0.9,2,2,_unknown_,0.5"]
    (root / "eval/predictions.csv").write_text(header + "\n".join(rows) + "\n")
    (root / "eval/test_engine_predictions.csv").write_text(header + rows[0] + "\n")
    firmware = tmp_path / "generated"
    firmware.mkdir()
    (firmware / "model_data.c").write_text("const unsigned char g_model[] = {0};\n")
    (tmp_path / "model_int8.tflite").write_bytes(b"TFL3")
    return root


def _run(reports, smoke_params):
    root = reports.parent
    return model_card.run(smoke_params, reports, root / "generated", root / "model_int8.tflite",
                          root / "out/model_card.md", root / "out/summary.json", "keyspot-synthetic-ds_cnn_s")


def test_the_headline_holds_what_users_compare(reports, smoke_params):
    _, headline = _run(reports, smoke_params)
    assert headline == {"test": {"float": 0.9, "int8": 0.89}, "engine": {"float": 0.6, "int8": 0.58},
                        "model_bytes": 5000, "arena_bytes": 2048, "ram_bytes": 34048, "stream": {"miss": 0.1, "fa_per_h": 1.5}}
    assert json.loads((reports.parent / "out/summary.json").read_text()) == headline


def test_the_card_says_what_the_model_is_how_it_does_and_where_it_fails(reports, smoke_params):
    card, _ = _run(reports, smoke_params)
    assert card.startswith("# Model card: keyspot-synthetic-ds_cnn_s\n")
    assert "1,234 parameters" in card and "12 labels" not in card and "4 labels" in card
    assert "| unseen speakers (`test`) | 40 | 0.9000 | 0.8900 |" in card
    assert "| unseen speech engine (`test_engine`) | 20 | 0.6000 | 0.5800 |" in card
    assert "| `no` | 0.70 | 0.69 | 0.50 | 0.49 |" in card
    assert "| test | 20.0 | 50 | 10.0% | 1.5 | 400 ms |" in card
    assert "5,000 bytes" in card and "2,048 bytes" in card
    assert "RAM on the board: 34,048 bytes" in card
    assert "| audio ring | 32,000 | `firmware/psoc6/source/audio_provider.c` |" in card
    assert "| tensor arena | 2,048 | `firmware/psoc6/source/model_runner.cpp` |" in card
    assert model_card.folder_sha256(reports.parent / "generated") in card
    # Worst classes by int8 recall; confusions by count, then by name.
    assert "(int8 recall): `no` 0.69, `_unknown_` 0.89, `yes` 0.94." in card
    assert "`no` as `yes` (2), `yes` as `_unknown_` (1)." in card
    assert "`go`" not in card


def test_same_bytes_every_time(reports, smoke_params):
    first, _ = _run(reports, smoke_params)
    again, _ = _run(reports, smoke_params)
    assert first == again


def test_a_missing_report_is_named(reports, smoke_params):
    (reports / "stream.json").unlink()
    with pytest.raises(FileNotFoundError, match="stream.json: missing; run `dvc repro`"):
        _run(reports, smoke_params)
