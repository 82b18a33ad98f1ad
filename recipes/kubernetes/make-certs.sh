#!/bin/sh
# Makes the realm's certificates and the Secrets that carry them, in this folder:
#   certs/ca/           the realm CA (ca.pem, ca.key): keep ca.key out of the cluster
#   certs/macula-<i>/   ca.pem, cert.pem, key.pem for pod macula-<i> (`certs issue --creds-dir`),
#                       with the pod's DNS name in the certificate
#   certs/secrets.yaml  one Secret macula-<i>-tls per pod, holding its three files (what
#                       `kubectl create secret generic macula-<i>-tls --from-file=certs/macula-<i>
#                       --dry-run=client -o yaml` writes): `kubectl apply -f certs/secrets.yaml`
# NAMESPACE (default default), REALM (default acme, as in configmap.yaml), REPLICAS (default 3);
# MACULA names the macula command (default `macula`), e.g. MACULA=./dist/macula.
# Needs only sh and base64: no kubectl, no cluster.
set -eu
cd "$(dirname "$0")"
MACULA=${MACULA:-macula}
NAMESPACE=${NAMESPACE:-default}
REALM=${REALM:-acme}
REPLICAS=${REPLICAS:-3}
case "$REPLICAS" in
  '' | *[!0-9]*)
    echo "make-certs.sh: REPLICAS must be a number, not '$REPLICAS'" >&2
    exit 2
    ;;
esac
if [ -e certs ]; then
  echo "make-certs.sh: certs/ exists already (remove it to make a new realm)" >&2
  exit 1
fi
$MACULA certs ca init --realm "$REALM" --out certs/ca
umask 077
secrets=certs/secrets.yaml
echo "# Made by make-certs.sh (realm $REALM, namespace $NAMESPACE): one Secret per pod." >"$secrets"
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  pod="macula-$i"
  $MACULA certs issue --realm "$REALM" --name "$pod" --ca-dir certs/ca --creds-dir "certs/$pod" \
    --dns "$pod.macula.$NAMESPACE.svc.cluster.local"
  {
    echo "---"
    echo "apiVersion: v1"
    echo "kind: Secret"
    echo "metadata:"
    echo "  name: $pod-tls"
    echo "  namespace: $NAMESPACE"
    echo "  labels: { app.kubernetes.io/name: macula, app.kubernetes.io/part-of: macula }"
    echo "type: Opaque"
    echo "data:"
    for f in ca.pem cert.pem key.pem; do
      echo "  $f: $(base64 <"certs/$pod/$f" | tr -d '\n')"
    done
  } >>"$secrets"
  i=$((i + 1))
done
echo "make-certs.sh: certs/ is ready; next: kubectl apply -f certs/secrets.yaml -f ."
