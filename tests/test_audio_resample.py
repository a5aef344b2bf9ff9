"""keyspot.audio.resample designs resample_poly's low-pass once per ratio:
it must give resample_poly's own samples, to the bit, or every dataset
fetched before would change."""

from math import gcd

import numpy as np
import pytest
from scipy.signal import resample_poly

from keyspot import audio


@pytest.mark.parametrize("rate, target", [(22050, 16000), (24000, 16000), (48000, 16000), (44100, 16000),
                                          (8000, 16000), (11025, 16000), (16000, 22050)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_resample_gives_resample_polys_own_samples(rate, target, dtype):
    x = (np.random.default_rng(rate).standard_normal(4321) * 3000).astype(dtype)
    g = gcd(rate, target)
    expected = resample_poly(x, target // g, rate // g).astype(np.float32)
    for _ in range(2):   # the second time from the designed filter kept
        assert audio.resample(x, rate, target).tobytes() == expected.tobytes()


def test_the_kept_filter_cannot_be_changed_by_a_caller():
    audio.resample(np.ones(100, np.float32), 24000, 16000)
    with pytest.raises(ValueError):
        audio._lowpass(2, 3, np.dtype(np.float32))[0] = 1.0
