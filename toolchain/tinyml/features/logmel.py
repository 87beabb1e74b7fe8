"""The log-mel spectrogram of the keyword-spotting lab: one specification, numpy and C++.

Specification (`LogMelSpec`), applied to 16-bit PCM at `sample_rate_hz`:

1. sample / 32768 (float);
2. frames of `window_samples` every `hop_samples` (a one-second clip gives `frame_count` frames);
3. each frame times a periodic Hann window, zero-padded to `fft_size`, real FFT;
4. power |X[k]|^2 of bins 0 .. fft_size / 2;
5. `mel_bins` triangular filters (HTK mel scale, `lower_hz` to `upper_hz`), unnormalised;
6. log(energy + `log_floor`).

numpy computes it in float64 for training; the board runs the plain C++ in `logmel.cpp`
(float32, radix-2 FFT) with the Hann window and the filter weights rendered from this spec
(`template_context()`). Tolerance between the two, checked by the parity test: at most
`PARITY_TOLERANCE` (natural-log units) on every feature, which is far below one int8 step of
the model's input (about 0.1 for these features).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from tinyml.core.errors import InputError
from tinyml.features.imu import c_float

PARITY_TOLERANCE = 1e-4  # measured: at most 1.1e-5 on test clips (float32 C vs float64 numpy)


def c_rows(values: np.ndarray, per_row: int = 8) -> list[str]:
    """C float literals, `per_row` to a line, each line ending in a comma: table rows for a template."""
    literals = [c_float(v) for v in np.asarray(values).reshape(-1)]
    return [", ".join(literals[i : i + per_row]) + "," for i in range(0, len(literals), per_row)]


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * np.expm1(np.asarray(mel, dtype=np.float64) / 1127.0)


@dataclass(frozen=True)
class LogMelSpec:
    sample_rate_hz: int = 16000
    clip_samples: int = 16000
    window_samples: int = 480  # 30 ms
    hop_samples: int = 320  # 20 ms
    fft_size: int = 512
    mel_bins: int = 40
    lower_hz: float = 60.0
    upper_hz: float = 7600.0
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        if self.fft_size & (self.fft_size - 1) or self.fft_size < self.window_samples:
            raise InputError(f"fft_size {self.fft_size} must be a power of two at least the window ({self.window_samples})", "fix the LogMelSpec")
        if not 0 <= self.lower_hz < self.upper_hz <= self.sample_rate_hz / 2:
            raise InputError("the mel band edges must satisfy 0 <= lower < upper <= sample_rate / 2", "fix the LogMelSpec")
        if self.clip_samples < self.window_samples:
            raise InputError("a clip must hold at least one window", "fix the LogMelSpec")

    @property
    def frame_count(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.hop_samples

    @property
    def spectrum_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's input: (frames, mel bins, 1)."""
        return (self.frame_count, self.mel_bins, 1)

    @cached_property
    def hann_window(self) -> np.ndarray:
        """Periodic Hann window, as float32 (the values the board uses)."""
        n = np.arange(self.window_samples, dtype=np.float64)
        return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.window_samples)).astype(np.float32)

    @cached_property
    def mel_filters(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per mel bin: first spectrum bin, bin count, and the weights (float32, concatenated)."""
        edges = mel_to_hz(np.linspace(hz_to_mel(self.lower_hz), hz_to_mel(self.upper_hz), self.mel_bins + 2))
        freqs = np.arange(self.spectrum_bins) * self.sample_rate_hz / self.fft_size
        starts, counts, weights = [], [], []
        for m in range(self.mel_bins):
            left, centre, right = edges[m], edges[m + 1], edges[m + 2]
            rising = (freqs - left) / (centre - left)
            falling = (right - freqs) / (right - centre)
            w = np.maximum(0.0, np.minimum(rising, falling))
            nonzero = np.flatnonzero(w > 0)
            if nonzero.size == 0:  # a band narrower than one FFT bin: take the nearest bin
                nonzero = np.array([int(np.argmin(np.abs(freqs - centre)))])
                w[nonzero] = 1.0
            first, last = int(nonzero[0]), int(nonzero[-1])
            starts.append(first)
            counts.append(last - first + 1)
            weights.append(w[first : last + 1])
        return np.asarray(starts, np.int32), np.asarray(counts, np.int32), np.concatenate(weights).astype(np.float32)

    def mel_matrix(self) -> np.ndarray:
        """(spectrum_bins, mel_bins) float64 weights: the dense form of `mel_filters`."""
        starts, counts, weights = self.mel_filters
        matrix = np.zeros((self.spectrum_bins, self.mel_bins))
        offset = 0
        for m, (first, count) in enumerate(zip(starts, counts)):
            matrix[first : first + count, m] = weights[offset : offset + count]
            offset += count
        return matrix

    def frames(self, pcm: np.ndarray) -> np.ndarray:
        """Log-mel features of any number of samples: (frames, mel_bins) float32."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise InputError(f"audio has dtype {pcm.dtype} and shape {pcm.shape}", "give one clip as 1-D int16 PCM")
        count = 1 + (pcm.shape[0] - self.window_samples) // self.hop_samples if pcm.shape[0] >= self.window_samples else 0
        if count == 0:
            return np.zeros((0, self.mel_bins), np.float32)
        audio = pcm.astype(np.float64) / 32768.0
        index = np.arange(self.window_samples)[None, :] + self.hop_samples * np.arange(count)[:, None]
        windowed = audio[index] * self.hann_window.astype(np.float64)
        spectrum = np.fft.rfft(windowed, n=self.fft_size, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        return np.log(power @ self.mel_matrix() + self.log_floor).astype(np.float32)

    def features(self, pcm: np.ndarray) -> np.ndarray:
        """One clip (exactly `clip_samples`, shorter ones zero-padded) -> model input (frames, mel, 1)."""
        pcm = np.asarray(pcm, dtype=np.int16)[: self.clip_samples]
        if pcm.shape[0] < self.clip_samples:
            pcm = np.pad(pcm, (0, self.clip_samples - pcm.shape[0]))
        return self.frames(pcm)[:, :, None]

    def batch(self, clips: np.ndarray) -> np.ndarray:
        """(n, clip_samples) int16 -> (n, frames, mel_bins, 1) float32."""
        return np.stack([self.features(clip) for clip in clips]) if len(clips) else np.zeros((0, *self.input_shape), np.float32)

    def template_context(self) -> dict[str, object]:
        starts, counts, weights = self.mel_filters
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "clip_samples": self.clip_samples,
            "window_samples": self.window_samples,
            "hop_samples": self.hop_samples,
            "fft_size": self.fft_size,
            "fft_log2": int(self.fft_size).bit_length() - 1,
            "spectrum_bins": self.spectrum_bins,
            "mel_bins": self.mel_bins,
            "frame_count": self.frame_count,
            "log_floor": c_float(self.log_floor),
            "hann_window_rows": c_rows(self.hann_window),
            "fft_cos_rows": c_rows(np.cos(2.0 * np.pi * np.arange(self.fft_size // 2) / self.fft_size)),
            "fft_sin_rows": c_rows(np.sin(2.0 * np.pi * np.arange(self.fft_size // 2) / self.fft_size)),
            "mel_starts": [int(v) for v in starts],
            "mel_counts": [int(v) for v in counts],
            "mel_weights_rows": c_rows(weights),
            "mel_weight_count": int(weights.size),
        }

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
