"""edgeslm: an on-device runtime and toolchain for small language models that serve AI agents."""

import os

__version__ = "0.1.0"

# llama.cpp computes with OpenMP (libgomp, which reads this when llama_cpp loads it). Its default spin of
# 300,000 rounds at each barrier is fine on an idle machine, but with any other busy process on the cores
# the spinning threads take turns with it: beside one busy process decode ran at 6.3 tok/s, and at 20.4
# with 1,000 rounds, which costs nothing measurable when the machine is quiet (44.9 vs 44.4 tok/s; `python
# -m benchmarks.contention`, README). A laptop always has another process. Users who set it keep theirs.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
