"""The two labels every keyspot dataset may hold besides its keywords.

Data sources write them into labels.json; training mixes `_silence_` clips
in as background noise; c-export tells the recognizer which class indices
never fire. Their names follow Google Speech Commands.
"""

SILENCE = "_silence_"   # no speech: background noise only
UNKNOWN = "_unknown_"   # speech, but none of the keywords
