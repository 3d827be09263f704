"""GPU offload planning on the real GGUF, against stated amounts of VRAM (this machine has no GPU: the
split is worked out from the file's header, so it runs here; what a GPU measures is in the last test,
which skips without a GPU build and says so)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeslm import device
from edgeslm.backends import memory, offload
from edgeslm.backends.memory import Budget, parse_budget, plan
from edgeslm.config import Settings
from edgeslm.errors import DoesNotFit, InvalidRequest
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog

MIB, GIB = 1 << 20, 1 << 30


@pytest.fixture(scope="module")
def gguf(home):
    cat = Catalog(Settings(home=home))
    return cat.ensure_local(cat.get("default"))


def gpu_plan(gguf, layers, free=None, n_ctx=8192):
    return plan(gguf, n_ctx=n_ctx, gpu_layers=layers, vram_free=free, gpu_build="CUDA", runtime=0)


def test_everything_fits_a_large_gpu(gguf):
    meta, tensors = read_header(gguf)
    cpu, gpu = plan(gguf, n_ctx=8192, runtime=0), gpu_plan(gguf, "auto", 16 * GIB)
    n_layer = meta["gemma3.block_count"]
    assert gpu.gpu_layers == n_layer + 1 and gpu.device == "gpu" and "all layers and the output" in gpu.gpu_reason
    embd = next(t.nbytes for t in tensors if t.name == "token_embd.weight")
    # Gemma ties its output to the embedding: the lookup stays in RAM, a copy goes to the GPU
    assert gpu.terms["weights"] == embd and gpu.vram["weights"] == sum(t.nbytes for t in tensors)
    assert gpu.vram["kv_cache"] == cpu.terms["kv_cache"] and gpu.terms["kv_cache"] == 0
    assert gpu.terms["repack"] == 0 and gpu.vram["driver"] == offload.DRIVER
    # what left RAM is what arrived in VRAM, less the driver's context and the embedding's copy, plus
    # the CPU's repacked copies, which a GPU does not need
    assert cpu.total - gpu.total == gpu.vram_total - offload.DRIVER - embd + cpu.terms["repack"]


def test_auto_fits_the_stated_vram_with_the_margin(gguf):
    meta, _ = read_header(gguf)
    n_layer = meta["gemma3.block_count"]
    one = gpu_plan(gguf, 1).vram_total
    per_layer = gpu_plan(gguf, 2).vram_total - one
    free = int((one + 5.5 * per_layer) / (1 - offload.MARGIN_SHARE))  # room for 6 layers, not 7
    p = gpu_plan(gguf, "auto", free)
    assert p.gpu_layers == 6 and p.device == f"gpu+cpu (6/{n_layer + 1} layers)"
    assert p.vram_total <= free - offload.margin(free) < gpu_plan(gguf, 7).vram_total
    assert "6 of 18 layers fit" in p.gpu_reason and f"{free / MIB:.0f} MiB free VRAM" in p.gpu_reason
    # the last six blocks are the ones offloaded
    _, tensors = read_header(gguf)
    want = sum(t.nbytes for t in tensors if t.name.startswith(tuple(f"blk.{i}." for i in range(12, 18))))
    assert p.vram["weights"] == want
    assert gpu_plan(gguf, "auto", 100 * MIB).gpu_layers == 0  # less than the driver's context: CPU
    more = [gpu_plan(gguf, n).vram_total for n in range(n_layer + 2)]
    assert more == sorted(more) and more[0] == 0


def test_numbers_all_and_cpu_builds(gguf):
    assert gpu_plan(gguf, 5).gpu_layers == 5 and "5 layers as asked" in gpu_plan(gguf, 5).gpu_reason
    assert gpu_plan(gguf, offload.parse_layers("all")).gpu_layers == 19
    cpu_build = plan(gguf, n_ctx=4096, gpu_layers="auto", vram_free=8 * GIB, gpu_build=None)
    assert cpu_build.gpu_layers == 0 and cpu_build.vram == {} and "no GPU offload" in cpu_build.gpu_reason
    assert plan(gguf, n_ctx=4096, gpu_layers="auto", gpu_build="Vulkan").gpu_layers == 0  # VRAM unknown
    assert offload.parse_layers("0") == 0 and offload.parse_layers(None) == "auto"
    with pytest.raises(InvalidRequest, match="use auto, all, 0"):
        offload.parse_layers("lots")


def test_budgets_name_ram_and_vram(gguf):
    assert parse_budget("ram=6GB,vram=4GB") == Budget(6 * GIB, 4 * GIB)
    assert parse_budget("512MiB") == Budget(512 * MIB)
    assert parse_budget("vram=2G").vram == 2 * GIB
    with pytest.raises(ValueError, match="ram=SIZE and/or vram=SIZE"):
        parse_budget("ram=6GB,gpu=2G")
    p = gpu_plan(gguf, "all")
    memory.check_fits(p, Budget(8 * GIB, 2 * GIB))
    with pytest.raises(DoesNotFit, match="VRAM budget is 512 MiB"):
        memory.check_fits(p, Budget(8 * GIB, 512 * MIB))
    with pytest.raises(DoesNotFit, match="VRAM budget is 300 MiB"):  # no vram= part: the GPU's free VRAM
        memory.check_fits(p, Budget(8 * GIB), vram_free=300 * MIB)
    with pytest.raises(DoesNotFit, match="VRAM budget is 400 MiB"):  # all layers asked for, on a small GPU
        memory.check_fits(gpu_plan(gguf, "all", 400 * MIB), Budget(8 * GIB))
    with pytest.raises(DoesNotFit, match="of RAM"):
        memory.check_fits(p, Budget(64 * MIB, 8 * GIB))


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_plan_reports_the_device_and_refuses_bad_values(env):
    r = cli(env, "qualify", "default", "--plan", "--gpu-layers", "auto", "--memory-budget", "ram=4GB,vram=2GB")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["budget"] == {"ram": 4 * GIB, "vram": 2 * GIB} and got["fits"]
    for key in ("gpu_layers", "gpu_reason", "vram", "vram_total", "device", "n_layer"):
        assert key in got
    if offload.gpu_build() is None:  # this machine: a CPU build says why it plans for the CPU
        assert got["device"] == "cpu" and "no GPU offload" in got["gpu_reason"]
    for args, needle in ((("qualify", "default", "--gpu-layers", "lots"), "invalid --gpu-layers 'lots'"),
                         (("serve", "--gpu-layers", "-1"), "invalid --gpu-layers '-1'"),
                         (("qualify", "default", "--plan", "--memory-budget", "vrm=1G"), "ram=SIZE and/or vram=SIZE")):
        r = cli(env, *args)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_onnx_picks_a_gpu_execution_provider_when_onnxruntime_has_one():
    # the provider lists are inputs (what onnxruntime.get_available_providers() returns on such machines)
    assert offload.onnx_provider(["CUDAExecutionProvider", "CPUExecutionProvider"], "auto")[0] == "cuda"
    assert offload.onnx_provider(["DmlExecutionProvider", "CPUExecutionProvider"], "auto")[0] == "dml"
    assert offload.onnx_provider(["CUDAExecutionProvider"], 0) == (None, "CPU (--gpu-layers 0)")
    name, why = offload.onnx_provider(["CPUExecutionProvider"], "auto")
    assert name is None and "no GPU execution provider" in why and "CPUExecutionProvider" in why


@pytest.mark.skipif(offload.gpu_build() is None or not device.gpus(), reason=(
    "needs a GPU build of llama-cpp-python (this one has no GPU offload: CMAKE_ARGS=-DGGML_CUDA=on, see the README) "
    "and a GPU whose VRAM NVML or torch can read"))
def test_qualify_on_the_gpu_measures_vram_within_15_percent_of_the_plan(env, tmp_path):
    r = cli(env, "qualify", "default", "--gpu-layers", "auto", "--runs", "2", "--json", "--out", str(tmp_path))
    assert r.returncode in (0, 1), r.stderr[-2000:]
    report = json.loads(r.stdout)
    gpu = report["gpu"]
    assert gpu["measured"] and gpu["layers"] > 0 and report["cpu_run"] is not None
    assert gpu["vram_peak"] is not None and abs(gpu["vram_plan_error"]) <= 0.15, gpu
