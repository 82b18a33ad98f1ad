#!/bin/sh
# Makes what recipes/compose/compose.yaml mounts, in this folder:
#   certs/ca/          the demo realm's CA (ca.pem, ca.key: keep it out of the containers)
#   certs/<node>/      ca.pem, cert.pem, key.pem for seed, n2 and n3 (`certs issue --creds-dir`)
#   data/<node>/       each node's data directory
#   .env               MACULA_UID and MACULA_GID: the nodes run as you, so they read their keys
# MACULA names the macula command (default `macula`), e.g. MACULA=./dist/macula.
set -eu
cd "$(dirname "$0")"
MACULA=${MACULA:-macula}
if [ -e certs ]; then
  echo "make-certs.sh: certs/ exists already (remove it to make a new realm)" >&2
  exit 1
fi
$MACULA certs ca init --realm demo --out certs/ca
for node in seed n2 n3; do
  # --dns: the name the other containers reach it by (compose service name); the seed is also
  # reached from the host, on its published port.
  extra=""
  [ "$node" != seed ] || extra="--ip 127.0.0.1"
  # shellcheck disable=SC2086
  $MACULA certs issue --realm demo --name "$node" --dns "$node" $extra --ca-dir certs/ca \
    --creds-dir "certs/$node"
  mkdir -p "data/$node"
done
printf 'MACULA_UID=%s\nMACULA_GID=%s\n' "$(id -u)" "$(id -g)" > .env
echo "make-certs.sh: certs/, data/ and .env are ready; next: docker compose up -d --build"
