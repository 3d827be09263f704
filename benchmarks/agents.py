"""Agent frameworks at their own defaults, N runs each: pydantic-ai and openai-agents run a tool loop (one
call, its result, a final text that uses it), instructor extracts a model, against a real `edgeslm serve`
with the default model. Nothing sets a temperature or any sampling field: each framework sends what it
sends by default, and the server fills the rest from the shipped adapter's manifest.

    python -m benchmarks.agents [--runs 10] [--threads 2] [--model default@TASK]

A run is right when the framework made exactly the expected call (tide times for Valletta, the pollen
count for Ljubljana; instructor: name and age) and the final text uses the tool's result. The tools and
towns are listed by no generator of ours (as in tests/test_agents.py, which runs each once in
`make test`). Results: benchmarks/results/agents.json and a chart beside it; the last stdout line is JSON.
`--model` asks another model or adapter than the default (a sweep's candidate, installed in EDGESLM_HOME's
store with the shipped sampling block by `benchmarks.tools_sweep defaults`).

What it can show: whether the unchanged frameworks get the right call from the default model, run after
run (the server's scheduling and batching must not change an answer). What it cannot: other tools,
phrasings or frameworks; at greedy defaults the runs differ only by the server's state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from benchmarks._chart import bars
from benchmarks._server import running_server

TIDES = "High tide 06:42 and 19:05; low tide 00:31 and 12:54"
POLLEN = "Grass pollen high (7 of 10), tree pollen low"


def pydantic_ai(base: str, model: str) -> tuple[bool, str]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.usage import UsageLimits

    agent = Agent(OpenAIChatModel(model, provider=OpenAIProvider(base_url=base, api_key="unused")),
                  instructions="You are a helpful assistant.")
    seen: list[str] = []

    @agent.tool_plain
    def get_tide_times(harbour: str) -> str:
        """Today's high and low tide times for a harbour town."""
        seen.append(harbour)
        return TIDES

    out = agent.run_sync("When is high tide in Valletta today?", usage_limits=UsageLimits(request_limit=4)).output
    ok = [s.lower() for s in seen] == ["valletta"] and ("06:42" in out or "19:05" in out)
    return ok, f"calls {seen}, answer {out[:80]!r}"


def openai_agents(base: str, model: str) -> tuple[bool, str]:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    seen: list[str] = []

    @function_tool
    def get_pollen_count(town: str) -> str:
        """Today's pollen count for a town."""
        seen.append(town)
        return POLLEN

    client = AsyncOpenAI(base_url=base, api_key="unused", max_retries=0)
    agent = Agent(name="Assistant", instructions="You are a helpful assistant.", tools=[get_pollen_count],
                  model=OpenAIChatCompletionsModel(model=model, openai_client=client))
    out = str(asyncio.run(Runner.run(agent, "Can you check the pollen count in Ljubljana for me?", max_turns=4))
              .final_output)
    ok = [s.lower() for s in seen] == ["ljubljana"] and ("high" in out.lower() or "7" in out)
    return ok, f"calls {seen}, answer {out[:80]!r}"


def instructor_extract(base: str, model: str) -> tuple[bool, str]:
    import instructor
    from openai import OpenAI
    from pydantic import BaseModel

    class UserInfo(BaseModel):
        name: str
        age: int

    client = instructor.from_openai(OpenAI(base_url=base, api_key="unused", max_retries=0), mode=instructor.Mode.TOOLS)
    user = client.chat.completions.create(model=model, response_model=UserInfo, max_retries=0, messages=[
        {"role": "user", "content": "Maria Gonzalez is a 47-year-old nurse from Seville."}])
    return (user.name, user.age) == ("Maria Gonzalez", 47), repr(user)


FRAMEWORKS = {"pydantic-ai": pydantic_ai, "openai-agents": openai_agents, "instructor": instructor_extract}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/agents.json"))
    ap.add_argument("--model", default="default", help="the model (or MODEL@ADAPTER) every framework asks")
    args = ap.parse_args(argv)
    results: dict[str, dict] = {name: {"right": 0, "runs": 0, "wrong": []} for name in FRAMEWORKS}
    with running_server(threads=args.threads, env={**os.environ, "HF_HUB_OFFLINE": "1"}) as base:
        for i in range(args.runs):
            for name, run in FRAMEWORKS.items():  # interleaved: a slow moment of the machine hits all alike
                try:
                    ok, what = run(base, args.model)
                except Exception as e:  # noqa: BLE001 - a framework's error is a wrong run, reported
                    ok, what = False, f"{type(e).__name__}: {e}"[:200]
                r = results[name]
                r["runs"] += 1
                r["right"] += ok
                if not ok:
                    r["wrong"].append(what)
                print(f"run {i + 1:2}/{args.runs} {name:14} {'right' if ok else 'WRONG'}  {what}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "agents", "model": args.model, "runs": args.runs, "frameworks": results}, indent=2) + "\n")
    names = list(results)
    bars(args.out.with_suffix(".png"), f"Right runs of {args.runs}, each framework's own defaults", names,
         {"right": [results[n]["right"] for n in names]}, "runs")
    print(json.dumps({n: f"{r['right']}/{r['runs']}" for n, r in results.items()}))


if __name__ == "__main__":
    main()
