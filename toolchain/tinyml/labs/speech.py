"""Synthesised spoken keywords for the keyword-spotting lab, with espeak-ng and sox.

No speech data set is in the package registries, so the lab makes its own: each "speaker" is
an espeak-ng voice (accent + variant) with its own pitch and speed. Each word a speaker says
is synthesised once (espeak-ng), resampled to 16 kHz mono 16-bit (sox, without dither so that it repeats exactly), then placed at a random
offset in a one-second clip with a random gain and background noise (numpy). Silence clips
are noise only. Every random choice comes from one seeded generator: the same seed gives the
same clips, bit for bit.

Train and test are split by speaker, so the test measures voices the model never heard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyml.core.errors import ToolError
from tinyml.core.tools import require_program, run

log = logging.getLogger("tinyml.labs.speech")

KEYWORDS = ("yes", "no", "up", "down")
SILENCE = "silence"
UNKNOWN = "unknown"
# Class order of the model: silence and unknown first, as in micro_speech.
LABELS = (SILENCE, UNKNOWN, *KEYWORDS)
UNKNOWN_WORDS = ("left", "right", "go", "stop", "on", "off", "dog", "cat", "bird", "house", "wow", "bed", "zero", "one", "two", "three", "four", "tree")
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "croak")
SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = SAMPLE_RATE_HZ

INSTALL_HINT = "install espeak-ng and sox (Debian/Ubuntu: sudo apt-get install espeak-ng sox; macOS: brew install espeak-ng sox)"


@dataclass(frozen=True)
class SpeechSettings:
    """How many clips to make, and how varied; the seed fixes every random choice."""

    speakers: int = 32
    unknown_per_speaker: int = 2
    augmentations: int = 2  # clips made from each synthesised word
    silence_per_speaker: int = 2
    test_fraction: float = 0.2
    seed: int = 11

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Speaker:
    voice: str  # espeak-ng voice: accent+variant
    pitch: int  # 0..99
    speed: int  # words per minute
    amplitude: int  # 0..200


@dataclass(frozen=True)
class SpeechClips:
    """One-second int16 clips with class indices into LABELS, and the speaker of each clip."""

    audio: np.ndarray  # (n, CLIP_SAMPLES) int16
    labels: np.ndarray  # (n,) int64
    speakers: np.ndarray  # (n,) int64
    test_speakers: tuple[int, ...]

    def split(self) -> tuple[SpeechClips, SpeechClips]:
        """(train, test), split by speaker."""
        is_test = np.isin(self.speakers, self.test_speakers)
        return self._subset(~is_test), self._subset(is_test)

    def _subset(self, mask: np.ndarray) -> SpeechClips:
        return SpeechClips(self.audio[mask], self.labels[mask], self.speakers[mask], self.test_speakers)


def make_speakers(settings: SpeechSettings, rng: np.random.Generator) -> list[Speaker]:
    speakers = []
    for i in range(settings.speakers):
        accent = ACCENTS[i % len(ACCENTS)]
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        speakers.append(Speaker(f"{accent}+{variant}", int(rng.integers(25, 80)), int(rng.integers(120, 200)), int(rng.integers(90, 180))))
    return speakers


def synthesise_word(word: str, speaker: Speaker, work_dir: Path) -> np.ndarray:
    """One word as 16 kHz int16 PCM: espeak-ng to a WAV file, sox to 16 kHz mono 16-bit."""
    stem = hashlib.sha256(f"{word}|{speaker}".encode()).hexdigest()[:16]
    raw, resampled = work_dir / f"{stem}.raw.wav", work_dir / f"{stem}.wav"
    for cmd in (
        ["espeak-ng", "-v", speaker.voice, "-p", str(speaker.pitch), "-s", str(speaker.speed), "-a", str(speaker.amplitude), "-w", str(raw), word],
        ["sox", "-D", str(raw), "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", str(resampled)],
    ):
        result = run(cmd, timeout=60)
        if result.returncode != 0:
            raise ToolError(f"{cmd[0]} failed on {word!r} with voice {speaker.voice}: {result.stdout.strip()[-200:]}", INSTALL_HINT)
    with wave.open(str(resampled), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.int16)
    raw.unlink(missing_ok=True)
    resampled.unlink(missing_ok=True)
    return _trim(pcm)


def _trim(pcm: np.ndarray, threshold: int = 300) -> np.ndarray:
    """Cut leading and trailing near-silence, and at most one second of what remains."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    if loud.size:
        pcm = pcm[loud[0] : loud[-1] + 1]
    return pcm[:CLIP_SAMPLES]


def background_noise(rng: np.random.Generator, level: float) -> np.ndarray:
    """A second of noise in [-1, 1] units: white plus brown (integrated) noise, at `level` RMS."""
    white = rng.normal(0.0, 1.0, CLIP_SAMPLES)
    brown = np.cumsum(rng.normal(0.0, 1.0, CLIP_SAMPLES))
    brown -= np.linspace(brown[0], brown[-1], CLIP_SAMPLES)  # no drift
    mix = rng.uniform(0.0, 1.0)
    noise = mix * white / (white.std() + 1e-9) + (1.0 - mix) * brown / (brown.std() + 1e-9)
    return level * noise / (noise.std() + 1e-9)


def place_in_clip(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The word at a random offset with a random gain, in a second of background noise."""
    clip = background_noise(rng, level=10 ** rng.uniform(-3.3, -2.0))
    audio = word.astype(np.float64) / 32768.0 * 10 ** rng.uniform(-0.4, 0.25)
    offset = int(rng.integers(0, CLIP_SAMPLES - audio.size + 1))
    clip[offset : offset + audio.size] += audio
    return np.clip(np.round(clip * 32767.0), -32768, 32767).astype(np.int16)


def synthesise_clips(settings: SpeechSettings = SpeechSettings(), *, progress: Callable[[int, int], None] | None = None, workers: int = 2) -> SpeechClips:
    """Make the whole clip set. Two workers by default: espeak-ng and sox are single-threaded."""
    require_program("espeak-ng", INSTALL_HINT)
    require_program("sox", INSTALL_HINT)
    rng = np.random.default_rng(settings.seed)
    speakers = make_speakers(settings, rng)
    # Every word each speaker says, decided up front so that the order of work cannot change them.
    jobs: list[tuple[int, str, int]] = []  # (speaker, word, label)
    for s in range(len(speakers)):
        for keyword in KEYWORDS:
            jobs.append((s, keyword, LABELS.index(keyword)))
        for word in rng.choice(UNKNOWN_WORDS, size=settings.unknown_per_speaker, replace=False):
            jobs.append((s, str(word), LABELS.index(UNKNOWN)))
    done = 0
    with tempfile.TemporaryDirectory(prefix="tinyml-speech-") as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(synthesise_word, word, speakers[s], Path(tmp)) for s, word, _ in jobs]
        words = []
        for future in futures:
            words.append(future.result())
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    audio, labels, speaker_of = [], [], []
    for (s, _, label), word in zip(jobs, words):
        for _ in range(settings.augmentations):
            audio.append(place_in_clip(word, rng))
            labels.append(label)
            speaker_of.append(s)
    for s in range(len(speakers)):
        for _ in range(settings.silence_per_speaker):
            noise = background_noise(rng, level=10 ** rng.uniform(-3.5, -1.8))
            audio.append(np.clip(np.round(noise * 32767.0), -32768, 32767).astype(np.int16))
            labels.append(LABELS.index(SILENCE))
            speaker_of.append(s)
    test_count = max(1, round(settings.speakers * settings.test_fraction))
    test_speakers = tuple(range(settings.speakers - test_count, settings.speakers))
    log.info("synthesised %d clips from %d words of %d speakers", len(audio), len(jobs), len(speakers))
    return SpeechClips(np.stack(audio), np.asarray(labels, np.int64), np.asarray(speaker_of, np.int64), test_speakers)


def load_or_synthesise(cache: Path, settings: SpeechSettings = SpeechSettings(), *, progress: Callable[[int, int], None] | None = None) -> SpeechClips:
    """The clips for `settings`, from `cache` (.npz) when it holds that set, else made and cached."""
    from tinyml.core.files import atomic_write_bytes

    if cache.is_file():
        with np.load(cache, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) == settings.fingerprint():
                return SpeechClips(saved["audio"], saved["labels"], saved["speakers"], tuple(int(s) for s in saved["test_speakers"]))
    clips = synthesise_clips(settings, progress=progress)
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, audio=clips.audio, labels=clips.labels, speakers=clips.speakers, test_speakers=np.asarray(clips.test_speakers), fingerprint=settings.fingerprint())
    atomic_write_bytes(cache, buffer.getvalue())
    return clips


def label_names(indices: Sequence[int]) -> list[str]:
    return [LABELS[i] for i in indices]
