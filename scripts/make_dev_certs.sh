#!/usr/bin/env bash
# Development TLS material for a Flower SuperLink, and EC keys for SuperNode authentication.
#
# usage: scripts/make_dev_certs.sh [-n NODE]... [-f] OUT_DIR [HOST...]
#
#   OUT_DIR/ca.crt, ca.key          a self-signed development CA (kept if it exists, so
#                                   certificates already handed to edges stay valid)
#   OUT_DIR/server.pem, server.key  SuperLink certificate for IP:127.0.0.1, DNS:localhost and
#                                   every HOST given (a name, or an IPv4/IPv6 address)
#   OUT_DIR/nodes/NODE, NODE.pub    one ECDSA P-384 key pair per -n NODE, OpenSSH format, as
#                                   `flower-supernode --auth-supernode-private-key` and
#                                   `flwr supernode register` expect (kept if it exists)
#   -f                              make a new CA as well (every edge then needs the new ca.crt)
#
# Development only: EC keys without passphrases, 825-day validity. Keep ca.key and nodes/* private.
set -euo pipefail

usage() { sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

nodes=()
force=0
while getopts "n:fh" opt; do
  case "$opt" in
    n) nodes+=("$OPTARG") ;;
    f) force=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
out="$1"; shift

for tool in openssl ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 1; }
done
for node in "${nodes[@]+"${nodes[@]}"}"; do
  [[ "$node" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "error: node name '$node' must match [A-Za-z0-9._-]+" >&2; exit 2; }
done

mkdir -p "$out"
umask 077  # private keys readable by the owner only

# Subject alternative names: loopback always, plus the given hosts.
san="IP:127.0.0.1,DNS:localhost"
for host in "$@"; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then san+=",IP:$host"; else san+=",DNS:$host"; fi
done

if [ "$force" = 1 ] || [ ! -s "$out/ca.crt" ] || [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -sha256 -days 825 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -subj "/O=FedUReID dev/CN=FedUReID development CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "new CA: $out/ca.crt"
fi

ext="$(mktemp)"
csr="$(mktemp)"
trap 'rm -f "$ext" "$csr"' EXIT
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" > "$ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -keyout "$out/server.key" -out "$csr" \
  -subj "/O=FedUReID dev/CN=${1:-localhost}" 2>/dev/null
openssl x509 -req -in "$csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 825 -sha256 \
  -extfile "$ext" -out "$out/server.pem" 2>/dev/null
rm -f "$out/ca.srl"
openssl verify -CAfile "$out/ca.crt" "$out/server.pem" >/dev/null
chmod 644 "$out/ca.crt" "$out/server.pem"
echo "server certificate: $out/server.pem ($san)"

if [ ${#nodes[@]} -gt 0 ]; then
  mkdir -p "$out/nodes"
  for node in "${nodes[@]}"; do
    key="$out/nodes/$node"
    if [ ! -s "$key" ]; then
      ssh-keygen -q -t ecdsa -b 384 -N "" -C "$node" -f "$key"
    fi
    chmod 644 "$key.pub"
    echo "node key: $key (register $key.pub)"
  done
fi
