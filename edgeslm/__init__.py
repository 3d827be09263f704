"""edgeslm: an on-device runtime and toolchain for small language models that serve AI agents."""

import os

__version__ = "0.1.0"

# llama.cpp computes with OpenMP (libgomp, which reads this when llama_cpp loads it). Its default spin of
# 300,000 rounds at each barrier is fine on an idle machine, but with any other busy process on the cores
# the spinning threads take turns with it: decode fell from 49 to 4 tok/s beside one busy process, and to
# 23 with 1,000 rounds, which costs nothing when the machine is quiet (52 tok/s; `python -m
# benchmarks.contention`). A laptop always has another process. Users who set it keep theirs.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
