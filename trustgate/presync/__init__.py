"""The pre-sync gate: a gated ref that only moves to commits that pass (`trustgate presync`).

`runner.PresyncGate` orchestrates one run; `git` runs git, `signatures` judges
commits, `changes` finds removed protected objects and their approvals,
`reconcilers` says what Flux and Argo CD each apply of a tree.
"""
