"""The HTTP edge: OpenAI wire types, their translation, the error table and the FastAPI app."""
