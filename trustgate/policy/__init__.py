"""Policy engines: Kubernetes schemas and Rego."""
