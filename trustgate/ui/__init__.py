"""The auditor's view: a read-only web application over the decision log (`trustgate ui`, ADR 11).

Owns: turning query parameters into `Filters` (`query.py`), explaining a
record for a page (`explain.py`), server-rendered SVG charts (`charts.py`),
inclusion proofs and evidence archives (`evidence.py`), background
verification (`verify.py`) and the HTTP application (`app.py`). Leaves out:
the store and every write to it (`trustgate.decisions`), and the command
line (`trustgate.cli.ui`).
"""
