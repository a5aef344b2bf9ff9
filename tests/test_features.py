"""The reference feature implementation against librosa, and its spec file."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest

from keyspot import features
from keyspot.features import FeatureSpec


def _spec(kind="mfcc") -> FeatureSpec:
    return FeatureSpec(kind=kind, sample_rate=16000, clip_samples=16000, window_samples=480,
                       hop_samples=320, fft_size=512, mel_bins=40, mel_fmin=20.0, mel_fmax=4000.0,
                       num_mfcc=10, log_floor=1e-10, labels=("a", "b"), mean=(0.0,) * 10, std=(1.0,) * 10)


def _chirp_pcm(seed=0) -> np.ndarray:
    t = np.arange(16000) / 16000
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.02 * rng.standard_normal(16000)
    return np.round(x * 32767).astype(np.int16)


def _librosa_log_mel(pcm, spec):
    # Our frames start at k*hop with the window centred in the FFT frame;
    # librosa's (center=False) frames are fft_size long, so pad it on the left
    # by the offset of the window inside the FFT frame.
    left = (spec.fft_size - spec.window_samples) // 2
    y = np.pad(pcm.astype(np.float64) / 32768.0, (left, 0))
    mel = librosa.feature.melspectrogram(
        y=y, sr=spec.sample_rate, n_fft=spec.fft_size, hop_length=spec.hop_samples,
        win_length=spec.window_samples, window="hann", center=False, power=2.0,
        n_mels=spec.mel_bins, fmin=spec.mel_fmin, fmax=spec.mel_fmax)[:, :spec.num_frames]
    return librosa.power_to_db(mel, ref=1.0, amin=spec.log_floor, top_db=None).T


def test_mfcc_matches_librosa():
    spec = _spec()
    pcm = _chirp_pcm()
    ours = features.unnormalised(pcm, spec)[0]
    log_mel = _librosa_log_mel(pcm, spec)
    theirs = librosa.feature.mfcc(S=log_mel.T, n_mfcc=spec.num_mfcc, dct_type=2, norm="ortho").T
    assert ours.shape == theirs.shape == (49, 10)
    assert np.max(np.abs(ours - theirs)) < 1e-2 * np.max(np.abs(theirs))


def test_log_mel_matches_librosa():
    spec = dataclasses.replace(_spec("log_mel"), mel_fmax=8000.0)
    pcm = _chirp_pcm(1)
    ours = features.unnormalised(pcm, spec)[0]
    theirs = _librosa_log_mel(pcm, spec)
    assert ours.shape == (49, 40)
    assert np.max(np.abs(ours - theirs)) < 0.05  # dB


def test_mel_weights_equal_librosa_filters():
    spec = _spec()
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20.0, fmax=4000.0)
    np.testing.assert_allclose(features.mel_weights(spec), theirs, rtol=1e-4, atol=1e-7)


def test_batch_equals_single_clips():
    spec = _spec()
    pcm = np.stack([_chirp_pcm(i) for i in range(3)])
    batch = features.compute(pcm, spec)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], features.compute(pcm[i], spec)[0])


@pytest.mark.parametrize("kind", ["mfcc", "log_mel"])
def test_a_reused_workspace_gives_the_same_features(kind):
    spec = _spec(kind)
    pcm = np.stack([_chirp_pcm(i) for i in range(4)])
    work = features.Workspace(spec, 4)
    expected = features.unnormalised(pcm, spec)
    first = features.unnormalised(pcm, spec, work)
    np.testing.assert_array_equal(first, expected)
    # A smaller batch through the same buffers, then the first again:
    # nothing of one call leaks into the next.
    np.testing.assert_array_equal(features.unnormalised(pcm[2:][::-1], spec, work), expected[2:][::-1])
    np.testing.assert_array_equal(features.unnormalised(pcm, spec, work), expected)
    # Results are not views of the buffers: the later calls left `first` alone.
    np.testing.assert_array_equal(first, expected)


def test_wrong_clip_length_is_refused():
    with pytest.raises(ValueError, match="expected clips of 16000 samples"):
        features.unnormalised(np.zeros(8000, np.int16), _spec())


def test_spec_round_trip(tmp_path):
    spec = _spec()
    spec.save(tmp_path / "spec.json")
    assert FeatureSpec.load(tmp_path / "spec.json") == spec
    assert '"num_frames": 49' in (tmp_path / "spec.json").read_text()
