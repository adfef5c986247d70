"""The errors of the verification and registry layers follow the naming rule and sit in the one
hierarchy (trustgate.errors), grouped by who must act; the old names stay importable."""

from __future__ import annotations

from trustgate.errors import Error, InputError, VerificationError
from trustgate.oci.errors import InvalidReference, InvalidReferenceError, RegistryError
from trustgate.oci.reference import Reference
from trustgate.verify import SignatureVerificationError, VerificationFailed


def test_the_names_end_in_error_and_the_old_ones_are_the_same_classes() -> None:
    assert VerificationFailed is SignatureVerificationError
    assert InvalidReference is InvalidReferenceError
    assert issubclass(SignatureVerificationError, VerificationError)  # a deny: the signer must act
    assert issubclass(InvalidReferenceError, InputError)  # the user must act
    assert issubclass(RegistryError, Error)


def test_a_bad_reference_raises_the_new_name() -> None:
    try:
        Reference.parse("Not A Reference")
    except InvalidReferenceError as e:
        assert e.diagnostics()
    else:
        raise AssertionError("parsed")
