#!/usr/bin/env bash
# The deployment walk-through (docs/deployment.md, "Deployment by hand"): a SuperLink with TLS and
# SuperNode authentication, one SuperNode per edge, a 2-round smoke job, all on 127.0.0.1.
#   scripts/deploy_walkthrough.sh [--secure] [work folder, default runs/deploy]
# --secure: three edges whose node config demands secure aggregation; the job runs SecAgg+.
# Ports: LINK_PORT (8100) for the SuperLink, NODE_PORT (9094) and up for the edges' Runtime APIs.
# Exit 0 only when the run ends finished:completed; every process it started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SECURE=false
if [ "${1:-}" = --secure ]; then SECURE=true; shift; fi
# 1. environment, certificates and node keys, edge data (Flower starts flower-superexec by name)
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 PATH="$PWD/.venv/bin:$PATH"
D="$(realpath -m "${1:-runs/deploy}")"
export FLWR_HOME="$D/flwr_home"                       # the flwr CLI's connections
LINK_PORT=${LINK_PORT:-8100} NODE_PORT=${NODE_PORT:-9094}
EDGES="edge-a edge-b" NODE_EXTRA="" JOB_EXTRA=""
if $SECURE; then  # with two edges, each could compute the other's change from the new global model
  EDGES="edge-a edge-b edge-c" NODE_EXTRA=' secure-aggregation="true"'
  JOB_EXTRA=" pu.where=edge federation.secure_aggregation=true"
fi
trap 'kill $(jobs -p) 2> /dev/null || true; wait' EXIT   # 6. stop (registrations and runs stay in $D/superlink.db)
# shellcheck disable=SC2046
scripts/make_dev_certs.sh $(printf -- '-n %s ' $EDGES) "$D/certs"   # CA, server cert, EC node keys
fedureid synth out="$D/data" preset=smoke             # edges edge_a, edge_b, edge_c in Market layout
# 2. SuperLink: TLS, SuperNode authentication, persistent state, no per-run `uv sync`
flower-superlink --host 127.0.0.1 --port "$LINK_PORT" \
  --ssl-ca-certfile "$D/certs/ca.crt" --ssl-certfile "$D/certs/server.pem" --ssl-keyfile "$D/certs/server.key" \
  --enable-supernode-auth --disable-runtime-dependency-installation \
  --database "$D/superlink.db" > "$D/superlink.log" 2>&1 &
mkdir -p "$FLWR_HOME"
cat > "$FLWR_HOME/config.toml" << TOML
[superlink]
default = "fedureid"
[superlink.fedureid]
address = "127.0.0.1:$LINK_PORT"
root-certificates = "$D/certs/ca.crt"
TOML
until flwr supernode list fedureid > /dev/null 2>&1; do sleep 1; done
# 3. register each edge's public key (any other key exits 305, "Failed to activate SuperNode")
for e in $EDGES; do flwr supernode register "$D/certs/nodes/$e.pub" fedureid --name "$e"; done
# 4. one SuperNode per edge; state-dir keeps its clusters and local model across restarts
port=$NODE_PORT
for e in $EDGES; do
  FLWR_HOME="$D/$e" flower-supernode --superlink "127.0.0.1:$LINK_PORT" --port "$port" \
    --root-certificates "$D/certs/ca.crt" --auth-supernode-private-key "$D/certs/nodes/$e" \
    --node-config "client-name=\"$e\" data-dir=\"$D/data/${e/-/_}\" state-dir=\"$D/state/$e\"$NODE_EXTRA" \
    > "$D/$e.log" 2>&1 &
  port=$((port + 1))
done
# 5. submit, follow, check (flwr run exits 0 even when the run fails)
N=$(wc -w <<< "$EDGES") CLIENTS=$(tr ' -' ',_' <<< "$EDGES")
RUN_ID=$(flwr run . fedureid --format json --run-config "experiment='smoke' base-dir='$PWD' \
  overrides='rounds=2 federation.min_clients=$N$JOB_EXTRA run_dir=$D/run data.root=$D/data data.synth_preset=null data.clients=[$CLIENTS]'" \
  | python3 -c "import json, sys; print(json.load(sys.stdin)['run-id'])")
flwr log "$RUN_ID" fedureid --stream                 # returns when the run ends
for _ in $(seq 30); do                                # its status may take a moment to settle
  STATUS=$(flwr ls fedureid --run-id "$RUN_ID" --format json \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['runs'][0]['status'])")
  [[ $STATUS == finished* ]] && break || sleep 2
done
echo "run $RUN_ID: $STATUS"
[ "$STATUS" = finished:completed ] && cat "$D/run/report.md"   # per-client rank-1/5/10 and mAP
