"""Training-time augmentation: deterministic, fresh each epoch, bounded."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from keyspot import augment

AUG = SimpleNamespace(prob=1.0, speed_range=(0.85, 1.15), shift_ms=100, gain_db_range=(-6.0, 6.0), noise_prob=1.0,
                      noise_snr_db_range=(10.0, 20.0), timbre_prob=0.0, timbre_db=6.0, timbre_points=6,
                      time_masks=2, time_mask_frames=5, freq_masks=1, freq_mask_bins=2)


def _clips(n=6):
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    return np.stack([np.round(8000 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)) for _ in range(n)]).astype(np.int16)


def test_same_seed_epoch_and_clip_give_the_same_waveform():
    pcm = _clips()
    bank = augment.noise_bank(pcm, np.zeros(len(pcm), int), None, seed=3)
    index = np.arange(len(pcm))
    a = augment.augment_waveforms(pcm, bank, AUG, 16000, seed=3, epoch=1, index=index)
    b = augment.augment_waveforms(pcm, bank, AUG, 16000, seed=3, epoch=1, index=index)
    np.testing.assert_array_equal(a, b)
    # A clip's augmentation depends on its index, not on its batch position.
    c = augment.augment_waveforms(pcm[::-1], bank, AUG, 16000, seed=3, epoch=1, index=index[::-1])
    np.testing.assert_array_equal(a, c[::-1])
    assert not np.array_equal(a, augment.augment_waveforms(pcm, bank, AUG, 16000, seed=3, epoch=2, index=index))
    assert not np.array_equal(a, augment.augment_waveforms(pcm, bank, AUG, 16000, seed=4, epoch=1, index=index))
    assert a.dtype == np.int16 and not np.array_equal(a, pcm)


def test_noise_is_mixed_at_the_requested_snr():
    pcm = _clips(1)
    bank = augment.noise_bank(pcm, np.zeros(1, int), None, seed=0)
    quiet = SimpleNamespace(**{**vars(AUG), "speed_range": (1.0, 1.0), "shift_ms": 0, "gain_db_range": (0.0, 0.0),
                               "noise_snr_db_range": (20.0, 20.0)})
    out = augment.augment_waveforms(pcm, bank, quiet, 16000, seed=0, epoch=1, index=np.arange(1))
    noise = out.astype(np.float64) - pcm
    snr = 10 * np.log10(np.mean(pcm.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(snr - 20.0) < 0.5


def test_timbre_is_a_smooth_gain_within_its_bounds():
    curve = augment.timbre_curve(np.random.default_rng(5), 16000, 16000, max_db=6.0, points=6)
    db = 20 * np.log10(curve)
    assert curve.shape == (8001,) and np.all(np.abs(db) <= 6.0 + 1e-9) and np.ptp(db) > 1.0
    assert np.max(np.abs(np.diff(db))) < 0.05   # smooth: no step between neighbouring bins
    tone = _clips(1)[0].astype(np.float32)
    np.testing.assert_allclose(augment.recolour(tone, np.ones(8001)), tone, atol=1e-2)
    # A tone comes out scaled by the curve's gain at its frequency.
    t = np.arange(16000) / 16000
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = augment.recolour(sine, curve)
    assert abs(np.max(np.abs(out)) - curve[1000]) < 1e-3


def test_timbre_draws_from_its_own_generator():
    """Turning timbre on recolours clips but leaves every other draw alone:
    with a flat curve (0 dB) the clips are those of timbre off."""
    pcm = _clips()
    bank = augment.noise_bank(pcm, np.zeros(len(pcm), int), None, seed=3)
    index = np.arange(len(pcm))
    off = augment.augment_waveforms(pcm, bank, AUG, 16000, seed=3, epoch=1, index=index)
    flat = SimpleNamespace(**{**vars(AUG), "timbre_prob": 1.0, "timbre_db": 0.0})
    np.testing.assert_allclose(augment.augment_waveforms(pcm, bank, flat, 16000, 3, 1, index), off, atol=1)
    on = SimpleNamespace(**{**vars(AUG), "timbre_prob": 1.0})
    assert np.abs(augment.augment_waveforms(pcm, bank, on, 16000, 3, 1, index).astype(int) - off).max() > 100


def test_silence_clips_are_the_noise_bank():
    pcm = _clips(4)
    labels = np.array([0, 2, 0, 3])
    bank = augment.noise_bank(pcm, labels, silence_id=0, seed=0)
    assert len(bank) == 2
    np.testing.assert_allclose(np.sqrt(np.mean(bank.astype(np.float64) ** 2, axis=1)), 1.0, rtol=1e-5)


def test_prob_zero_leaves_clips_and_features_alone():
    pcm = _clips()
    off = SimpleNamespace(**{**vars(AUG), "prob": 0.0})
    np.testing.assert_array_equal(
        augment.augment_waveforms(pcm, np.ones((1, 16000), np.float32), off, 16000, 0, 1, np.arange(6)), pcm)
    x = np.ones((6, 49, 10), np.float32)
    np.testing.assert_array_equal(augment.mask_features(x.copy(), off, 0, 1, np.arange(6)), x)


def test_masks_stay_within_their_widths():
    x = np.ones((50, 49, 10), np.float32)
    augment.mask_features(x, AUG, seed=0, epoch=1, index=np.arange(50))
    for example in x:
        masked_frames = np.all(example == 0, axis=1).sum()
        assert masked_frames <= AUG.time_masks * AUG.time_mask_frames
    assert (x == 0).any()


def test_speed_scales_frequency_and_keeps_the_centre():
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    faster = augment.resample_about_centre(tone, 1.25)
    assert faster.shape == tone.shape and faster.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(faster))
    assert abs(np.argmax(spectrum) - 550) <= 1          # 440 Hz played 1.25x faster, 1 Hz bins
    np.testing.assert_allclose(faster[7999:8001], tone[7999:8001], atol=0.05)   # the centre stays put
    # Played faster, a second of audio ends early: the edges are zero filled.
    assert not faster[:1000].any() and not faster[-1000:].any()
    slower = augment.resample_about_centre(tone, 0.8)
    assert abs(np.argmax(np.abs(np.fft.rfft(slower))) - 352) <= 1 and slower[:100].any()
    np.testing.assert_array_equal(augment.resample_about_centre(tone, 1.0), tone)
