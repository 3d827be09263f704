"""The LLM-to-SLM conversion pipeline (the paper's S1–S6). capture.py is S1: logging every model call."""
