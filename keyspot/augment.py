"""Training-time augmentation, fresh every epoch and deterministic from the seed.

On the waveform: speed (resampling), time shift, gain, timbre (a random
smooth equaliser), and background noise mixed at a random
SNR (noise taken from the training split's `_silence_` clips, which are
background noise in every dataset source, or generated when there are
none). On the features: SpecAugment-style time and frequency masks. Every
random draw comes from a generator keyed by (seed, epoch, clip), so the
same seed gives the same epochs whatever ran before.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from keyspot.features import hz_to_mel


def rng_for(*key) -> np.random.Generator:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def noise_bank(pcm: np.ndarray, labels: np.ndarray, silence_id: int | None, seed: int) -> np.ndarray:
    """float32 noise clips at unit RMS: the silence clips, else white/pink/brown."""
    if silence_id is not None and np.any(labels == silence_id):
        bank = pcm[labels == silence_id].astype(np.float32)
    else:
        rng = rng_for(seed, "noise-bank")
        n = pcm.shape[1]
        white = rng.standard_normal((3, n))
        spectrum = np.fft.rfft(white, axis=1)
        freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        bank = np.fft.irfft(spectrum * freqs ** (-np.array([0.0, 0.5, 1.0]))[:, None], n=n, axis=1)
        bank = bank.astype(np.float32)
    rms = np.sqrt(np.mean(bank.astype(np.float64) ** 2, axis=1, keepdims=True))
    keep = rms[:, 0] > 0
    return (bank[keep] / rms[keep]).astype(np.float32)


def resample_about_centre(x: np.ndarray, speed: float) -> np.ndarray:
    """`x` played `speed` times faster (tempo, pitch and formants scale
    together), the same length, the centre kept in place: zero filled at
    the ends when faster, cut at the ends when slower.
    Linear interpolation: its low-pass dulls the top octave a little, as
    the rooms and microphones of the data do too."""
    n = len(x)
    centre = (n - 1) / 2
    positions = centre + (np.arange(n, dtype=np.float64) - centre) * speed
    return np.interp(positions, np.arange(n), x, left=0.0, right=0.0).astype(np.float32)


def timbre_curve(rng: np.random.Generator, samples: int, sample_rate: int, max_db: float,
                 points: int) -> np.ndarray:
    """A smooth random gain for each rfft bin of `samples` samples: gains
    drawn in +-max_db at `points` frequencies evenly spaced in mel from 0 Hz
    to Nyquist, joined linearly in mel, as linear factors."""
    knots, bins = _mel_axes(samples, sample_rate, points)
    gains_db = rng.uniform(-max_db, max_db, points)
    return 10.0 ** (np.interp(bins, knots, gains_db) / 20.0)


@functools.cache
def _mel_axes(samples: int, sample_rate: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The knots and the rfft bins of timbre_curve, in mel, read-only: the
    same for every clip of an epoch, and computing the bins' mel for each
    clip took a tenth of an epoch's augmentation."""
    knots = np.linspace(0.0, hz_to_mel(sample_rate / 2), points)
    bins = hz_to_mel(np.fft.rfftfreq(samples, 1.0 / sample_rate))
    for axis in (knots, bins):
        axis.setflags(write=False)
    return knots, bins


def recolour(x: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """`x` (float32) through the zero-phase filter whose gain per rfft bin is `curve`."""
    return np.fft.irfft(np.fft.rfft(x) * curve, n=len(x)).astype(np.float32)


def augment_waveforms(pcm: np.ndarray, noise: np.ndarray, aug, sample_rate: int,
                      seed: int, epoch: int, index: np.ndarray) -> np.ndarray:
    """Augmented copies of int16 clips (batch, samples); `index` names each
    clip (its row in the training split) for the random key."""
    out = pcm.copy()
    max_shift = int(sample_rate * aug.shift_ms / 1000)
    for row, clip_id in enumerate(index):
        rng = rng_for(seed, "augment", epoch, int(clip_id))
        if rng.random() >= aug.prob:
            continue
        x = pcm[row].astype(np.float32)
        speed = rng.uniform(*aug.speed_range)
        if speed != 1.0:
            x = resample_about_centre(x, speed)
        shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift else 0
        if shift:
            x = np.roll(x, shift)
            if shift > 0:
                x[:shift] = 0
            else:
                x[shift:] = 0
        x *= np.float32(10 ** (rng.uniform(*aug.gain_db_range) / 20))
        if aug.timbre_prob > 0:
            # Its own generator: the draws above and below stay as they were.
            timbre = rng_for(seed, "timbre", epoch, int(clip_id))
            if timbre.random() < aug.timbre_prob:
                x = recolour(x, timbre_curve(timbre, len(x), sample_rate, aug.timbre_db, aug.timbre_points))
        if len(noise) and rng.random() < aug.noise_prob:
            power = float(np.mean(x.astype(np.float64) ** 2))
            level = np.sqrt(power / 10 ** (rng.uniform(*aug.noise_snr_db_range) / 10)) if power > 0 \
                else 10 ** (rng.uniform(-60, -30) / 20) * 32768
            clip = noise[int(rng.integers(len(noise)))]
            x += np.roll(clip, int(rng.integers(len(clip)))) * np.float32(level)
        out[row] = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    return out


def mask_features(x: np.ndarray, aug, seed: int, epoch: int, index: np.ndarray) -> np.ndarray:
    """SpecAugment: zero (the training mean, after normalisation) random
    bands of frames and of coefficients, in place; returns `x`."""
    frames, coefficients = x.shape[1:3]
    for row, clip_id in enumerate(index):
        rng = rng_for(seed, "mask", epoch, int(clip_id))
        if rng.random() >= aug.prob:
            continue
        for _ in range(aug.time_masks):
            width = int(rng.integers(0, aug.time_mask_frames + 1))
            start = int(rng.integers(0, max(frames - width, 0) + 1))
            x[row, start:start + width, :] = 0
        for _ in range(aug.freq_masks):
            width = int(rng.integers(0, aug.freq_mask_bins + 1))
            start = int(rng.integers(0, max(coefficients - width, 0) + 1))
            x[row, :, start:start + width] = 0
    return x
