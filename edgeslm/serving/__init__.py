"""The runtime's HTTP server: the FastAPI app over the engine (the wire format it speaks is edgeslm.wire)."""
