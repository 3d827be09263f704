"""The LLM-to-SLM conversion pipeline (the paper's S1–S6).

proxy.py (S1 in front of a hosted LLM; the capture store itself is edgeslm.store.capture) ·
curate.py (S2, with edgeslm.privacy) · cluster.py (S3) · select.py (S4) · finetune.py (S5) ·
evaluate.py (the gate) · route.py (S6, the router's training; edgeslm/router.py applies it in `serve`) ·
convert.py (all of it, with drift) · report.py · data.py and tasks.py (what the stages share) ·
bfcl.py, agentdata.py and recipe.py (the shipped `tools` adapter's data and recipe). The synthetic
workload and the scripted teacher that test and benchmark it live in benchmarks/.
"""
