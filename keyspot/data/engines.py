"""The speech engines of the synthetic source, and which one spoke a clip:
a voice, or a manifest speaker, names its engine before the colon
(`kokoro:jf_alpha`, `espeak-ng:f3`)."""

# Each engine's key of `dataset` listing its voices.
VOICE_KEYS = {"espeak": "espeak_variants", "flite": "flite_voices", "pico": "pico_voices",
              "piper": "piper_voices", "kokoro": "kokoro_voices", "gnuspeech": "gnuspeech_voices"}
ENGINES = tuple(VOICE_KEYS)


def engine(voice: str) -> str:
    """The engine of a voice or speaker: espeak-ng:f3 -> espeak. A speaker of
    another source (a folder's, Speech Commands') names none of ENGINES."""
    name = voice.partition(":")[0]
    return "espeak" if name == "espeak-ng" else name
