"""What a pod without image volumes pays for the supply-chain set's volume rules.

Almost no pod has an image volume (`volumes[].image`), and every rule body regorus enters costs
about a microsecond, an empty loop included: the volume rules sit behind one test per finding set
(`_deny`, `_warn`), so adding them did not make every workload slower. Checked on the policy's
syntax tree, as `tests/unit/gate/test_kind_gate.py` checks the workload gate.
"""

from __future__ import annotations

import json
from typing import Any

import regorus

from trustgate.config import builtin_policy_dir

LIB = builtin_policy_dir() / "lib" / "k8s.rego"
SUPPLY_CHAIN = builtin_policy_dir() / "supply-chain" / "supply_chain.rego"
VOLUMES = "data.trustgate.lib.k8s.image_volumes"


def _bodies(name: str) -> list[list[str]]:
    """The statements (source text) of each body of the rule `name` of the supply-chain set."""
    engine = regorus.Engine()
    engine.add_policy(str(LIB), LIB.read_text("utf-8"))
    text = SUPPLY_CHAIN.read_text("utf-8")
    engine.add_policy(str(SUPPLY_CHAIN), text)
    (module,) = [m for m in json.loads(engine.get_ast_as_json()) if m["source"]["file"] == str(SUPPLY_CHAIN)]
    data = text.encode("utf-8")

    def source(statement: dict[str, Any]) -> str:
        span = statement["span"]
        return data[span["start"] : span["end"]].decode("utf-8")

    out = []
    for rule in module["ast"]["rules"]:
        if "Spec" not in rule:
            continue
        (head,) = rule["Spec"]["head"].values()
        if next(iter(head["refr"].values()))["value"] != name:
            continue
        out.extend([source(s) for s in body["query"]["stmts"]] for body in rule["Spec"]["bodies"])
    return out


def test_a_pod_without_image_volumes_enters_one_volume_body_per_finding_set() -> None:
    for name in ("_deny", "_warn"):
        volume_bodies = [b for b in _bodies(name) if any(VOLUMES in s for s in b)]
        assert len(volume_bodies) <= 1, f"{name}: {len(volume_bodies)} bodies read the image volumes"
        for body in volume_bodies:  # and stops at its first statement when there are none
            assert VOLUMES in body[0], f"{name}: {body[0]!r} comes before the volume test"


def test_the_volume_rules_all_stand_behind_the_gate() -> None:
    (gate,) = [b for b in _bodies("_deny") if any("_volume_deny" in s for s in b)]
    assert gate[0] == f"{VOLUMES} != set()"
    volume_rules = _bodies("_volume_deny")
    assert len(volume_rules) == 3  # images-unresolved-variable, images-no-latest, images-allowed-registries
    assert all(body[0].startswith(f"some v in {VOLUMES}") for body in volume_rules)
