"""The features stage's streamed, threaded extraction."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tiny_dataset

from keyspot import features
from keyspot.features import extract


def _md5s(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return tiny_dataset.make(tmp_path_factory.mktemp("raw"))


def test_same_bytes_whatever_the_worker_count(raw, tmp_path, smoke_params, monkeypatch):
    monkeypatch.setattr(extract, "CHUNK", 5)  # many chunks, finishing out of order on 3 threads
    extract.run(smoke_params, raw, tmp_path / "one", workers=1)
    extract.run(smoke_params, raw, tmp_path / "three", workers=3)
    assert _md5s(tmp_path / "one") == _md5s(tmp_path / "three")


def test_matches_the_in_memory_reference(raw, tmp_path, smoke_params):
    counts = extract.run(smoke_params, raw, tmp_path / "f", workers=2)
    spec = features.FeatureSpec.load(tmp_path / "f" / "spec.json")
    with np.load(tmp_path / "f" / "train.npz") as data:
        x, paths = data["x"], data["path"]
    pcm = np.stack([extract.audio.load_clip(raw / p, spec.sample_rate, spec.clip_samples) for p in paths])
    reference = features.unnormalised(pcm, spec).astype(np.float64)
    mean, std = reference.reshape(-1, spec.num_coefficients).mean(0), reference.reshape(-1, spec.num_coefficients).std(0)
    np.testing.assert_allclose(spec.mean, mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(spec.std, std, rtol=1e-9)
    np.testing.assert_allclose(x, features.normalise(reference.astype(np.float32), spec), atol=1e-5)
    assert counts == {"train": 24, "val": 6, "test": 6}


def test_unreadable_clip_is_reported_and_skipped(raw, tmp_path, smoke_params, capsys):
    broken = tmp_path / "raw"
    broken.mkdir()
    for p in raw.rglob("*"):
        if p.is_file():
            dest = broken / p.relative_to(raw)
            dest.parent.mkdir(exist_ok=True)
            dest.write_bytes(p.read_bytes())
    (broken / "tone" / "002.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    counts = extract.run(smoke_params, broken, tmp_path / "f")
    assert counts["train"] == 23
    assert "tone/002.wav" in capsys.readouterr().err
    with np.load(tmp_path / "f" / "train.npz") as data:
        assert "tone/002.wav" not in set(data["path"])


def test_streamed_npz_loads_like_savez(tmp_path):
    from keyspot import artifacts

    x = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    artifacts.save_npz_streamed(tmp_path / "a.npz", x=artifacts.Streamed(x.shape, np.float32, [x[:2], x[2:]]),
                                y=np.array([1, 2, 3]))
    with np.load(tmp_path / "a.npz") as data:
        np.testing.assert_array_equal(data["x"], x)
        np.testing.assert_array_equal(data["y"], [1, 2, 3])
    with pytest.raises(ValueError, match="2 rows written, 3 declared"):
        artifacts.save_npz_streamed(tmp_path / "b.npz", x=artifacts.Streamed(x.shape, np.float32, [x[:2]]))
    assert not (tmp_path / "b.npz").exists()
    assert not list(tmp_path.glob(".b.npz.*"))


def test_fast_wav_path_equals_libsndfile(raw):
    from keyspot import audio

    for path in sorted(raw.rglob("*.wav"))[:5]:
        samples, rate = audio.decode(path)
        slow = audio.to_int16(audio.fit_length(audio.to_mono(samples), 16000))
        np.testing.assert_array_equal(audio.load_clip(path, 16000, 16000), slow)


def test_to_int16_in_chunks_equals_one_pass():
    from keyspot import audio

    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(2 * audio.TO_INT16_CHUNK + 123) * 0.5).astype(dtype)   # some past full scale
        x[:4] = [1.0, -1.0, 0.5 / 32768, -1.5 / 32768]   # saturation, and rounding half to even
        expected = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        np.testing.assert_array_equal(audio.to_int16(x), expected)
    stereo = rng.uniform(-1, 1, (audio.TO_INT16_CHUNK + 7, 2))
    np.testing.assert_array_equal(audio.to_int16(stereo),
                                  np.clip(np.round(stereo * 32768.0), -32768, 32767).astype(np.int16))


def test_a_16_bit_mono_stream_loads_as_stored_others_through_float(tmp_path):
    import soundfile

    from keyspot import audio

    rng = np.random.default_rng(4)
    pcm = rng.integers(-32768, 32768, 3 * audio.TO_INT16_CHUNK, dtype=np.int16)
    soundfile.write(str(tmp_path / "s.flac"), pcm, 16000, format="FLAC", subtype="PCM_16")
    np.testing.assert_array_equal(audio.load_pcm(tmp_path / "s.flac", 16000), pcm)
    # Stereo, 24-bit or another rate: decoded to float, mixed, resampled, as before.
    soundfile.write(str(tmp_path / "st.flac"), np.stack([pcm, pcm // 2], axis=1), 16000, format="FLAC",
                    subtype="PCM_16")
    samples, _ = audio.decode(tmp_path / "st.flac")
    np.testing.assert_array_equal(audio.load_pcm(tmp_path / "st.flac", 16000), audio.to_int16(samples.mean(axis=1)))
    soundfile.write(str(tmp_path / "deep.flac"), pcm, 16000, format="FLAC", subtype="PCM_24")
    samples, _ = audio.decode(tmp_path / "deep.flac")
    np.testing.assert_array_equal(audio.load_pcm(tmp_path / "deep.flac", 16000), audio.to_int16(samples[:, 0]))
    soundfile.write(str(tmp_path / "r.flac"), pcm, 8000, format="FLAC", subtype="PCM_16")
    assert len(audio.load_pcm(tmp_path / "r.flac", 16000)) == 2 * len(pcm)
    (tmp_path / "bad.flac").write_bytes(b"fLaC" + b"\0" * 60)
    with pytest.raises(audio.AudioError, match="bad.flac"):
        audio.load_pcm(tmp_path / "bad.flac", 16000)
