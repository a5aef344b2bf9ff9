/*
 * Radix-2 FFT in float32: the power spectrum of a real frame.
 *
 * A real frame of n samples is transformed as a complex FFT of n/2 points
 * (even samples as real parts, odd as imaginary), then split into the
 * n/2 + 1 bins of the real spectrum. The twiddle factors are a table, not
 * computed here, so that every libm gives the same bits.
 */
#ifndef KEYSPOT_FFT_H_
#define KEYSPOT_FFT_H_

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if n is a power of two >= 4, the sizes keyspot_rfft_power accepts. */
int keyspot_fft_size_ok(int n);

/* In-place complex FFT of n points, interleaved (re, im). n is a power of two
   and twiddle holds exp(-2*pi*i*k/(n*stride)) as (cos, sin) for
   k < n*stride/2; entries k*stride are used. */
void keyspot_fft_complex(float *z, int n, const float *twiddle, int stride);

/* Power spectrum |X[k]|^2, k = 0..n/2, of the n real samples in frame
   (overwritten). twiddle: exp(-2*pi*i*k/n) as (cos, sin) for k < n/2.
   Returns 0, or -1 if n is not a power of two >= 4. */
int keyspot_rfft_power(float *frame, int n, const float *twiddle, float *power);

#ifdef __cplusplus
}
#endif

#endif /* KEYSPOT_FFT_H_ */
