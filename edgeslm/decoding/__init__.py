"""Decoding: chat templates, tool-call formats and output constraints. No model loading here."""
