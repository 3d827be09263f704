"""The OpenAI wire format, below both halves: request and response types, their translation to and from
internal types, the error table, request limits, the HTTP guard, and forwarding to an upstream LLM.
The server (edgeslm.serving) and the pipeline's proxy and data preparation both speak it; it imports
neither."""
