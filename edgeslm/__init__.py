"""edgeslm: an on-device runtime and toolchain for small language models that serve AI agents."""

__version__ = "0.1.0"
