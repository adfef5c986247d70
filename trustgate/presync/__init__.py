"""The pre-sync gate: a gated ref that only moves to commits that pass (`trustgate presync`).

`runner.PresyncGate` orchestrates one run; `git` runs git, `signatures` judges
commits, `changes` finds removed protected objects and their approvals.
"""
