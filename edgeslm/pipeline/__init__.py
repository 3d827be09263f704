"""The LLM-to-SLM conversion pipeline (the paper's S1–S6).

capture.py (S1, the log) · proxy.py (S1 in front of a hosted LLM) · pii.py + curate.py (S2) ·
cluster.py (S3) · select.py (S4) · finetune.py (S5) · evaluate.py (the gate) · route.py (S6, the
router's training; edgeslm/router.py applies it in `serve`) · convert.py (all of it, with drift) ·
report.py · data.py and tasks.py (what the stages share) · synthetic.py and teacher.py (the synthetic
agent workload and the scripted teacher that stands in for a hosted LLM).
"""
