"""The Textual dashboard; a subscriber of the engine's events, never imported by the engine."""
