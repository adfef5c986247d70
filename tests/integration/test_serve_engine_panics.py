"""`trustgate serve` over real HTTPS: objects that make regorus panic are answered, again and again.

pyo3's PanicException is a BaseException: before, it went past the evaluator
thread's `except Exception` and ended the thread, so a few crafted objects
emptied the pool and every later request waited for its deadline (and a
fail-open path then allowed everything). A panic is now a rule that could not
be evaluated, answered per the failure policy, and the evaluator carries on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.webhook import CertSet, make_certs, review, start_server

PANICKING_REGO = """\
package team

import rego.v1

deny contains "more than ten replicas" if {
\tcount(numbers.range(1, to_number(input.metadata.annotations.replicas))) > 10
}
"""

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "shop", "annotations": {"replicas": "3"}},
    "spec": {"containers": [{"name": "c", "image": "registry.example.com/c:1"}]},
}


def test_crafted_objects_that_make_the_engine_panic_do_not_exhaust_the_evaluators(tmp_path: Path) -> None:
    certs: CertSet = make_certs(tmp_path / "certs")
    (tmp_path / "team.rego").write_text(PANICKING_REGO)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  policies:\n    - path: team.rego\n"
        "kubernetes:\n  schemas: false\n"
    )
    crafted = json.loads(json.dumps(POD))
    # regorus panics allocating the range ("capacity overflow"; time.parse_duration_ns("1.") did,
    # until it was routed to trustgate's own)
    crafted["metadata"]["annotations"]["replicas"] = "9223372036854775807"
    srv = start_server(certs, "-c", str(config), "--evaluators", "2", workers=1)
    try:
        for i in range(6):  # three times the evaluator threads
            path = "/validate/fail-open" if i % 2 else "/validate"
            status, answer = srv.post(review(crafted, uid=f"uid-panic-{i}"), path=path)
            assert status == 200, answer
            response = answer["response"]
            assert response["uid"] == f"uid-panic-{i}"
            message = json.dumps(response)
            assert "data.team.deny" in message and "panicked" in message, response
            if path == "/validate":
                assert response["allowed"] is False, response
            else:  # the rule could not be evaluated: the failure policy decides, and says so
                assert response["allowed"] is True, response
                assert response["auditAnnotations"]["failure-policy"] == "open"
        status, answer = srv.post(review(POD, uid="uid-after"))
        assert status == 200, answer
        assert answer["response"]["allowed"] is True, answer
        long = json.loads(json.dumps(POD))
        long["metadata"]["annotations"]["replicas"] = "20"
        status, answer = srv.post(review(long, uid="uid-after-deny"))
        assert answer["response"]["allowed"] is False, answer
        assert "more than ten replicas" in answer["response"]["status"]["message"]
    finally:
        srv.stop()
