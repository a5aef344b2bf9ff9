"""What a microphone hears when nobody speaks: the `_silence_` class.

A keyword spotter listens to quiet far more than to speech, and quiet is
not white noise at a speech-like level: it is an ADC's digital zero, a
capsule's self-noise far below any voice, noise of any spectral slope, a
low-passed rumble, mains hum and its harmonics, a DC offset, a fan, clicks.
Each kind renders from the generator it is given, at RMS levels drawn from
`level_dbfs_range` (digital zero has none).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

KINDS = ("zero", "floor", "slope", "rumble", "hum", "dc", "fan", "clicks")


def render(kind: str, rng: np.random.Generator, n: int, sample_rate: int,
           level_dbfs_range: tuple[float, float]) -> np.ndarray:
    """Float samples (full scale 1) of one kind of quiet."""
    if kind == "zero":
        return np.zeros(n)
    level = 10.0 ** (rng.uniform(*level_dbfs_range) / 20.0)
    floor = slope_noise(rng, n, rng.uniform(0.0, 1.0)) * 10.0 ** (rng.uniform(-95.0, -70.0) / 20.0)
    if kind == "floor":      # self-noise only, far below any level a voice has
        return slope_noise(rng, n, rng.uniform(0.0, 1.0)) * 10.0 ** (rng.uniform(-96.0, -66.0) / 20.0)
    if kind == "slope":      # any spectral slope, from blue (-1) to beyond brown (3)
        return slope_noise(rng, n, rng.uniform(-1.0, 3.0)) * level
    if kind == "rumble":     # noise low-passed anywhere from 150 Hz to 3 kHz
        cutoff = float(np.exp(rng.uniform(np.log(150.0), np.log(3000.0))))
        sos = signal.butter(int(rng.integers(2, 7)), cutoff, "lowpass", fs=sample_rate, output="sos")
        return _at(signal.sosfilt(sos, slope_noise(rng, n, rng.uniform(0.0, 2.0))), level) + floor
    if kind == "hum":        # 50 or 60 Hz mains and its harmonics
        mains = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(n) / sample_rate
        hum = sum(rng.uniform(0.05, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
                  for k in range(1, 8))
        return _at(hum, level) + floor
    if kind == "dc":         # an offset, up to a few percent of full scale, on the floor
        return np.full(n, rng.choice([-1.0, 1.0]) * 10.0 ** (rng.uniform(-60.0, -26.0) / 20.0)) + floor
    if kind == "fan":        # blade-pass tone and harmonics over low-passed turbulence
        t = np.arange(n) / sample_rate
        blade = rng.uniform(60.0, 320.0)
        tones = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * blade * k * t + rng.uniform(0, 2 * np.pi))
                    for k in range(1, 5))
        sos = signal.butter(2, rng.uniform(400.0, 2500.0), "lowpass", fs=sample_rate, output="sos")
        air = _at(signal.sosfilt(sos, rng.standard_normal(n)), 1.0)
        wobble = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * t)
        return _at((air + rng.uniform(0.2, 1.0) * _at(tones, 1.0)) * wobble, level) + floor
    if kind == "clicks":     # a few short impulses: a relay, a tap on the case, ADC glitches
        x = floor.copy()
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(n))
            width = int(rng.integers(1, max(2, sample_rate // 500)))
            decay = np.exp(-np.arange(width) / max(width / 4.0, 1.0))
            x[at:at + width] += rng.choice([-1.0, 1.0]) * 10.0 ** (rng.uniform(-40.0, -6.0) / 20.0) \
                * decay[:n - at]
        return x
    raise ValueError(f"unknown kind of quiet {kind!r}; use one of {', '.join(KINDS)}")


def slope_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise at RMS 1 whose power falls as 1/f^exponent (0 white, 1 pink, 2 brown;
    negative rises: -1 blue)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    x = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n)
    return _at(x - x.mean(), 1.0)


def _at(x: np.ndarray, rms: float) -> np.ndarray:
    power = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return x * (rms / power) if power > 0 else x
