"""`edgeslm quantize`: fine-tuned models to GGUF (and ONNX), with what the conversion lost measured.

gguf_write.py writes and quantizes GGUF files, hf.py maps a Hugging Face checkpoint onto a base
GGUF's layout, gate.py measures KL / top-1 / speed against a reference, run.py ties them to the store.
"""
