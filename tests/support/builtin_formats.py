"""Strings for the built-in fields the kube-apiserver decodes from a string, valid and invalid.

Keyed by Go type: "byte" (`[]byte`, e.g. a Secret's `data`), "time" (`metav1.Time`, e.g.
`metadata.creationTimestamp`) and "micro-time" (`metav1.MicroTime`, e.g. an Event's `eventTime`).
The unit tests assert the verdicts written here; the differential test against the real
kube-apiserver (tests/integration/test_builtin_formats_apiserver.py) submits all of them and
asserts that trustgate and the API server agree on each.
"""

from __future__ import annotations

from typing import Any

VALID: dict[str, list[str]] = {
    "byte": [
        "",
        "aGVsbG8=",
        "aGVsbA==",
        "aGVs",
        "+/+/",
        "YR==",  # unused bits need not be zero
        "YWI=",
        "aGVs\nbG8=",  # newlines are ignored anywhere
        "aGVs\r\nbG8=",
        "aGVsbG8=\n",
        "\naGVs",
        "aGVsbA=\n=",
        "\n",
        "a\nG\nV\ns",
        "QUJD" * 64,
    ],
    "time": [
        "2024-01-31T12:00:00Z",
        "2024-12-31T23:59:59Z",
        "2024-02-29T00:00:00Z",
        "0000-02-29T00:00:00Z",
        "2024-01-31T12:00:00.5Z",  # fractional seconds, any number of digits
        "2024-01-31T12:00:00.123456789123Z",
        "2024-01-31T12:00:00,5Z",  # Go takes a comma too
        "2024-01-31T12:00:00+01:00",
        "2024-01-31T12:00:00-23:59",
        "2024-01-31T12:00:00+99:99",  # Go 1.19 does not range-check the offset
        "2024-01-31T12:00:00+-1:+0",  # ... and parses each half with atoi
        "2024-01-31T1:00:00Z",  # a one-digit hour
        "2024-01-31T12:00:.5Z",  # missing seconds hidden by a fraction (a Go 1.19 quirk)
    ],
    "micro-time": [
        "2024-01-31T12:00:00.000000Z",
        "2024-01-31T12:00:00.123456+01:00",
        "2024-01-31T12:00:00,123456Z",
        "2024-01-31T1:00:00.000000Z",
        "2024-01-31T12:00:00.+12345Z",
        "2024-01-31T12:00:00.-00000Z",
    ],
}

INVALID: dict[str, list[str]] = {
    "byte": [
        "aGVsbG8",  # unpadded
        "aGVsbA",
        "aGVsbA=",
        "a",
        "a===",
        "=",
        "====",
        "a-_b",  # the URL-safe alphabet
        "aGVsbG8_",
        "aGVs bG8=",  # a space is not ignored
        " aGVs",
        "aGVs\t",
        "aGVsbG8=x",  # data after the padding
        "aGVsbG8==",
        "aGVsbA==aGVs",
        "aGVsbA==\nx",
        "héllo===",
        "garbage",
        "not base64!",
    ],
    "time": [
        "",
        "garbage",
        "2024-01-31t12:00:00Z",  # lower-case t
        "2024-01-31T12:00:00z",  # lower-case z
        "2024-01-31T12:00:00",  # no offset
        "2024-01-31T12:00:00.5",
        "2024-01-31 12:00:00Z",
        "2024-01-31",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-1-31T12:00:00Z",
        "24-01-31T12:00:00Z",
        "+2024-01-31T12:00:00Z",
        "2024-01-31T24:00:00Z",
        "2024-01-31T123:00:00Z",
        "2024-01-31T12:60:00Z",
        "2024-01-31T12:0:00Z",
        "2024-01-31T12:00:60Z",  # no leap second
        "2024-01-31T12:00:00.Z",
        "2024-01-31T12:00:00+0100",
        "2024-01-31T12:00:00+01",
        "2024-01-31T12:00:00+01:0",
        "2024-01-31T12:00:00UTC",
        "2024-01-31T12:00:00ZZ",
        " 2024-01-31T12:00:00Z",
        "2024-01-31T12:00:00Z ",
        "2024-01-31T12:00:00Z\n",
        "2024-01-31T12:00:00+0é:00",
    ],
    "micro-time": [
        "",
        "2024-01-31T12:00:00Z",  # the fraction is required ...
        "2024-01-31T12:00:00.123Z",  # ... and has exactly six digits
        "2024-01-31T12:00:00.1234567Z",
        "2024-01-31T12:00:00.-00001Z",
        "2024-01-31T12:00:00.000000z",
        "2024-01-31t12:00:00.000000Z",
        "2024-01-31T12:00:00.000000",
        "2024-01-31T12:00:.000000Z",
        "2023-02-29T00:00:00.000000Z",
        "garbage",
    ],
}


# Objects with the value in one field each; valid to the API server otherwise (namespace default).


def secret(value: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default", **metadata},
        "data": {"k": value},
    }


def configmap(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "binaryData": {"k": value},
    }


def created_at(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "creationTimestamp": value},
    }


def webhook(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "w"},
        "webhooks": [
            {
                "name": "w.example.com",
                "clientConfig": {"url": "https://example.com/validate", "caBundle": value},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }


def event(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": value,
        # With an eventTime set, validation requires these (a 422 unrelated to decoding).
        "reportingComponent": "example.com/controller",
        "reportingInstance": "i",
        "action": "Test",
        "reason": "Test",
        "type": "Normal",
    }


def lease(value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": "default"},
        "spec": {"renewTime": value},
    }
