"""Make sure the installed llama-cpp-python runs on this machine's CPU; rebuild it once if it does not.

llama-cpp-python compiles llama.cpp with `-march=native`. On a Xeon with AMX, ggml then runs its matrix
kernels on AMX tiles, and a kernel (or sandbox) that does not grant a process the AMX tile state
answers the first `ldtilecfg` with a general protection fault: every decode dies with SIGSEGV. The
check decodes a few tokens of the embedded model in a child process; when the child dies of a signal,
the package is rebuilt from source with the AMX instructions switched off (everything else native)
and checked again. `make install` runs this (python -m tests.llama_build).
"""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import llama_cpp
from edgeslm.config import Settings
from edgeslm.store.registry import Catalog
cat = Catalog(Settings())
path = cat.ensure_local(cat.get("default"))
llm = llama_cpp.Llama(str(path), n_ctx=128, n_threads=1, verbose=False)
llm.eval(llm.tokenize(b"Hello there"))
print("llama.cpp decodes on this CPU")
"""
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"  # explicit -mno-* win over -march=native in GCC


def decodes(env: dict) -> bool:
    r = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True)
    if r.returncode == 0:
        print(r.stdout.strip())
        return True
    if r.returncode > 0:  # an ordinary error (no model, no package): not what this check fixes
        sys.stderr.write(r.stderr)
        raise SystemExit(f"the llama.cpp check failed with exit code {r.returncode}")
    return False


def main() -> None:
    import tempfile

    import llama_cpp

    env = {**os.environ, "EDGESLM_HOME": tempfile.mkdtemp(prefix="edgeslm-llama-check-"), "HF_HUB_OFFLINE": "1"}
    if decodes(env):
        return
    version = llama_cpp.__version__
    print(f"llama-cpp-python {version} faults on this CPU (AMX tiles refused?); rebuilding it without AMX "
          "(about 6 minutes)", flush=True)
    args = f"-DCMAKE_C_FLAGS='{NO_AMX}' -DCMAKE_CXX_FLAGS='{NO_AMX}'"
    # pip keys its wheel cache by the download, not the build flags: the faulting wheel leaves the cache,
    # so the rebuild is built (not taken from it), and cached in its place for the next install here
    subprocess.run([sys.executable, "-m", "pip", "cache", "remove", "llama_cpp_python"], capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps",
                    "--no-binary", "llama-cpp-python", f"llama-cpp-python=={version}"],
                   env={**os.environ, "CMAKE_ARGS": args}, check=True)
    if not decodes(env):
        raise SystemExit("llama-cpp-python still faults after a rebuild without AMX; see the README's install notes")


if __name__ == "__main__":
    main()
