"""The admission gate: `trustgate serve`, a validating admission webhook over HTTPS."""
