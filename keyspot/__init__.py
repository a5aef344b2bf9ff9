"""keyspot: keyword-spotting models from audio to a microcontroller."""
