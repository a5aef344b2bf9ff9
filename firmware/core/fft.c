/*
 * Iterative radix-2 decimation-in-time FFT and the real-input split.
 */
#include "fft.h"

int keyspot_fft_size_ok(int n)
{
    return n >= 4 && (n & (n - 1)) == 0;
}

static void bit_reverse(float *z, int n)
{
    int j = 0;
    for (int i = 0; i < n - 1; ++i) {
        if (i < j) {
            float re = z[2 * i], im = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = re;
            z[2 * j + 1] = im;
        }
        int bit = n >> 1;
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
}

void keyspot_fft_complex(float *z, int n, const float *twiddle, int stride)
{
    bit_reverse(z, n);
    for (int len = 2; len <= n; len <<= 1) {
        int half = len >> 1;
        int step = (n / len) * stride;
        for (int start = 0; start < n; start += len) {
            for (int j = 0; j < half; ++j) {
                float wr = twiddle[2 * j * step], wi = twiddle[2 * j * step + 1];
                float *a = &z[2 * (start + j)];
                float *b = &z[2 * (start + j + half)];
                float tr = wr * b[0] - wi * b[1];
                float ti = wr * b[1] + wi * b[0];
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

int keyspot_rfft_power(float *frame, int n, const float *twiddle, float *power)
{
    if (!keyspot_fft_size_ok(n)) {
        return -1;
    }
    int m = n / 2;
    /* frame[2k], frame[2k + 1] already are (re, im) of z[k] = x[2k] + i x[2k+1]. */
    keyspot_fft_complex(frame, m, twiddle, 2);
    const float *z = frame;
    power[0] = (z[0] + z[1]) * (z[0] + z[1]);
    power[m] = (z[0] - z[1]) * (z[0] - z[1]);
    for (int k = 1; k < m; ++k) {
        /* X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[m-k]) / 2,
           O = (Z[k] - conj Z[m-k]) / 2i. */
        float ar = z[2 * k], ai = z[2 * k + 1];
        float br = z[2 * (m - k)], bi = -z[2 * (m - k) + 1];
        float er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);
        float or_ = 0.5f * (ai - bi), oi = -0.5f * (ar - br);
        float wr = twiddle[2 * k], wi = twiddle[2 * k + 1];
        float xr = er + (wr * or_ - wi * oi);
        float xi = ei + (wr * oi + wi * or_);
        power[k] = xr * xr + xi * xi;
    }
    return 0;
}
