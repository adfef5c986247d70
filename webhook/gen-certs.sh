#!/bin/sh
# Certificate set-up without cert-manager: a CA and a serving certificate for
# trustgate.<namespace>.svc, stored as the Secret trustgate-tls, and the
# ValidatingWebhookConfiguration applied with the CA bundle.
#
#   webhook/gen-certs.sh [namespace]     (needs openssl and kubectl)
#
# Run it again before the certificate expires (365 days); the pods reload the
# new files without a restart (the kubelet updates the Secret volume).
set -eu
ns="${1:-trustgate}"
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -days 3650 -subj "/CN=trustgate-ca" -out "$dir/ca.crt"
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/tls.key"
openssl req -new -key "$dir/tls.key" -subj "/CN=trustgate.$ns.svc" -out "$dir/tls.csr"
printf 'subjectAltName=DNS:trustgate.%s.svc,DNS:trustgate.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
    "$ns" "$ns" > "$dir/ext.cnf"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 365 -extfile "$dir/ext.cnf" -out "$dir/tls.crt"

# The Secret's namespace first (README install order, step 1; harmless when it exists).
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" create secret tls trustgate-tls --cert="$dir/tls.crt" --key="$dir/tls.key" \
    --dry-run=client -o yaml | kubectl apply -f -
bundle="$(base64 < "$dir/ca.crt" | tr -d '\n')"
kubectl apply -f "$here/base/validatingwebhookconfiguration.yaml"
count="$(kubectl get validatingwebhookconfiguration trustgate -o jsonpath='{range .webhooks[*]}x{end}')"
i=0
while [ "$i" -lt "${#count}" ]; do
    kubectl patch validatingwebhookconfiguration trustgate --type=json \
        -p "[{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"}]"
    i=$((i + 1))
done
echo "gen-certs: trustgate-tls in namespace $ns; caBundle set on the webhook configuration"
