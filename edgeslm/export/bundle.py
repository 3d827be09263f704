"""The export folder: the base as a Hugging Face checkpoint (dequantized from the GGUF edgeslm
serves, with a chat template that renders what edgeslm renders), every task adapter of that base as
PEFT, the router, launch scripts for vLLM or SGLang and a compose file, and export.json describing it.
Knows nothing about serving; reads the store."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from edgeslm.config import Settings
from edgeslm.decoding.templates import generic_jinja
from edgeslm.decoding.tools import envelope_for, format_of_template
from edgeslm.errors import InvalidRequest
from edgeslm.store import gguf_io
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.lora_gguf import to_peft
from edgeslm.store.registry import Catalog

ENGINES = ("vllm", "sglang")
# the engines' tool-call parsers for each call format (vLLM --tool-call-parser; SGLang's names differ)
PARSERS = {"vllm": {"hermes": "hermes", "llama3-json": "llama3_json"},
           "sglang": {"hermes": "qwen25", "llama3-json": "llama3"}}
ENGINE_PORT, FRONT_PORT = {"vllm": 8000, "sglang": 30000}, 8080


def launch_command(engine: str, served: str, adapters: dict[str, dict], tool_format: str, root: str = ".") -> list[str]:
    """The engine's command line: the base, every adapter as a named LoRA, tool-call parsing."""
    rank = max((a["rank"] for a in adapters.values()), default=8)
    loras = [f"{task}={root}/adapters/{task}" for task in adapters]
    if engine == "vllm":
        cmd = ["vllm", "serve", f"{root}/base", "--served-model-name", served, "--dtype", "float32",
               "--chat-template", f"{root}/base/chat_template.jinja", "--enable-auto-tool-choice",
               "--tool-call-parser", PARSERS["vllm"][tool_format], "--port", str(ENGINE_PORT["vllm"])]
        if loras:
            cmd += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(len(loras)), "--lora-modules", *loras]
        return cmd
    cmd = ["python", "-m", "sglang.launch_server", "--model-path", f"{root}/base", "--served-model-name", served,
           "--dtype", "float32", "--tool-call-parser", PARSERS["sglang"][tool_format], "--port", str(ENGINE_PORT["sglang"])]
    if loras:
        cmd += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras-per-batch", str(min(len(loras), 8)),
                "--lora-paths", *loras]
    return cmd


def export(settings: Settings, model: str, engine: str, out: Path, progress=print) -> dict:
    if engine not in ENGINES:
        raise InvalidRequest(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}", param="to")
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise InvalidRequest(f"{out} exists and is not empty; choose a new folder", param="out")
    catalog = Catalog(settings)
    entry = catalog.get(model)
    if entry.format != "gguf":
        raise InvalidRequest(f"'{entry.id}' is an {entry.format} model; export starts from a GGUF model", param="model")
    gguf = catalog.ensure_local(entry)
    store = AdapterStore(settings.adapters_dir)
    if entry.default_adapter:
        store.has(entry.id, entry.default_adapter)  # lands a packaged adapter
    out.mkdir(parents=True, exist_ok=True)
    from edgeslm.quantize.hf import checkpoint_from_gguf

    progress(f"base: dequantizing {gguf.name} into a Hugging Face checkpoint")
    checkpoint_from_gguf(gguf, out / "base", cache=settings.cache)
    source = gguf_io.read_metadata(gguf).get("tokenizer.chat_template")
    tool_format = format_of_template(source) or entry.tool_format
    template = source or generic_jinja(entry.chat_format, envelope_for(tool_format))
    (out / "base" / "chat_template.jinja").write_text(template)
    cfg_path = out / "base" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = template
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    adapters: dict[str, dict] = {}
    for task in store.tasks(entry.id):
        a = store.get(entry.id, task, entry.sha256)
        dest = out / "adapters" / task
        progress(f"adapter {task}: PEFT")
        if (a.dir / "peft" / "adapter_model.safetensors").is_file():
            shutil.copytree(a.dir / "peft", dest, ignore=shutil.ignore_patterns("checkpoint*", "*.pt"))
            cfg = json.loads((dest / "adapter_config.json").read_text())
            cfg["base_model_name_or_path"] = "../../base"
            (dest / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
        else:
            to_peft(a.gguf, gguf, dest, "../../base", a.manifest.get("target_modules") or [])
        adapters[task] = {"rank": int(a.manifest.get("rank") or 8), "alpha": a.manifest.get("alpha"),
                          "source": a.manifest.get("source"), "sha256": a.manifest.get("adapter_sha256")}
    if settings.router_path.is_file():
        (out / "router").mkdir()
        shutil.copy2(settings.router_path, out / "router" / "router.json")
    served = entry.id
    cmd = launch_command(engine, served, adapters, tool_format)
    _write_launch(out, engine, cmd, served, bool(adapters) and settings.router_path.is_file(), entry.default_adapter)
    manifest = {"model": entry.id, "base_sha256": entry.sha256, "engine": engine, "tool_format": tool_format,
                "served_model_name": served, "adapters": adapters, "router": (out / "router").is_dir(),
                "default_adapter": entry.default_adapter, "launch": cmd}
    (out / "export.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _write_launch(out: Path, engine: str, cmd: list[str], served: str, router: bool, default: str | None) -> None:
    script = out / f"launch-{engine}.sh"
    script.write_text("#!/bin/sh\n# the engine, serving the base and every task adapter (needs a GPU and the engine installed)\n"
                      f'cd "$(dirname "$0")"\nexec {shlex.join(cmd)} "$@"\n')
    script.chmod(0o755)
    front = ["edgeslm-export-front", "--export", ".", "--engine", f"http://127.0.0.1:{ENGINE_PORT[engine]}/v1",
             "--port", str(FRONT_PORT)]
    (out / "launch-front.sh").write_text(
        "#!/bin/sh\n# model \"auto\": the router picks the task adapter, then forwards to the engine (pip install edgeslm)\n"
        f'cd "$(dirname "$0")"\nexec python -m edgeslm.export.front {shlex.join(front[1:])} "$@"\n')
    (out / "launch-front.sh").chmod(0o755)
    image = {"vllm": "vllm/vllm-openai:latest", "sglang": "lmsysorg/sglang:latest"}[engine]
    entry = '["vllm"]' if engine == "vllm" else '["python3"]'
    args = json.dumps(cmd[1:]).replace('"./', '"/export/')
    (out / "compose.yaml").write_text(f"""# docker compose up: the engine on the GPU, edgeslm's router in front on :{FRONT_PORT}
services:
  engine:
    image: {image}
    entrypoint: {entry}
    command: {args}
    working_dir: /export
    volumes: ["./:/export:ro"]
    deploy:
      resources:
        reservations:
          devices: [{{driver: nvidia, count: 1, capabilities: [gpu]}}]
  front:
    image: python:3.11-slim
    # reachable beyond the host: clients must send the key in EDGESLM_API_KEY (set it before `up`)
    command: ["sh", "-c", "pip install edgeslm && python -m edgeslm.export.front --export /export \\
      --engine http://engine:{ENGINE_PORT[engine]}/v1 --port {FRONT_PORT} --host 0.0.0.0 \\
      --api-key-env EDGESLM_API_KEY --allowed-hosts '*'"]
    environment: ["EDGESLM_API_KEY=${{EDGESLM_API_KEY:?set EDGESLM_API_KEY: the key clients of the front send}}"]
    volumes: ["./:/export:ro"]
    ports: ["{FRONT_PORT}:{FRONT_PORT}"]
    depends_on: [engine]
""")
