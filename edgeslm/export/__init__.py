"""`edgeslm export`: a model, its task adapters and the router, carried to a serving engine built
for many agents on a GPU (vLLM, SGLang). bundle.py writes the folder; front.py is the `model: "auto"`
router that runs in front of the engine."""
