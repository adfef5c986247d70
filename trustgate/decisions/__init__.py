"""The decision log: every decision of every gate, hash-chained, signed, queryable.

`record.build_record` turns a `Decision` (and what the gate knows about the
actor and subject) into a record; `log.DecisionLog` appends records with group
commit to a store chosen by URL (`sqlite.py`, `postgres.py`); `chain.Verifier`
proves the stored chain untampered. See docs/adr/0003-decision-log-chain.md.
"""
