#!/usr/bin/env bash
# FerrumQ operator end-to-end suite against a REAL Kubernetes cluster.
#
# NOT run by scripts/test, .ci/run or `cargo test`, and never run on the
# development machines of this repository (they have no cluster). It is for
# users' CI and for manual checks; see operator/tests/e2e/README.md.
#
# Gate: does nothing (exit 0, prints SKIPPED) unless FERRUMQ_E2E=1.
#
# Steps:
#   1. cluster: use the kubectl context FERRUMQ_E2E_CLUSTER if set, else
#      create a throwaway kind (or k3d) cluster, deleted on exit;
#   2. images: scripts/build-image --tag <workspace version>, loaded into
#      kind/k3d (FERRUMQ_E2E_LOAD for an existing cluster);
#   3. helm install charts/ferrumq-operator; wait for the operator;
#   4. apply examples/dev-broker.yaml; wait for its Available condition;
#   5. port-forward the client Service; mosquitto_sub + mosquitto_pub;
#   6. change spec.broker; the StatefulSet's config-hash annotation changes
#      and the rollout completes; the operator exports
#      ferrumq_operator_broker_replicas for the broker;
#   7. clusterOperation.stopped=true; the StatefulSet goes to 0 replicas;
#   8. delete the MqttBroker; its children are garbage-collected.
#
# Environment:
#   FERRUMQ_E2E=1                required, or the suite is skipped
#   FERRUMQ_E2E_CLUSTER=CONTEXT  existing kubectl context to use (no cluster is
#                                created or deleted)
#   FERRUMQ_E2E_PROVIDER         kind (default) or k3d, for the created cluster
#   FERRUMQ_E2E_LOAD             loading images into an existing cluster:
#                                kind:NAME, k3d:NAME or none (default: none;
#                                the images must then be pullable, see
#                                FERRUMQ_E2E_SKIP_BUILD and the README)
#   FERRUMQ_E2E_SKIP_BUILD=1     do not run scripts/build-image
#   FERRUMQ_E2E_TAG              image tag (default: the workspace version,
#                                which is what the chart and operator default to)
#   FERRUMQ_E2E_NAMESPACE        namespace of the MqttBroker (default ferrumq-e2e)
#   FERRUMQ_E2E_TIMEOUT          seconds per wait (default 300)
#   FERRUMQ_E2E_KEEP=1           keep the created cluster and objects on exit
# Needs: docker, kubectl, helm (v3 or v4), mosquitto_pub/_sub, curl, and kind
# or k3d when a cluster is created.
set -euo pipefail

if [ "${FERRUMQ_E2E:-}" != 1 ]; then
    echo "operator/tests/e2e/run.sh: SKIPPED (needs a real cluster; set FERRUMQ_E2E=1 to run, see operator/tests/e2e/README.md)"
    exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"

PROVIDER="${FERRUMQ_E2E_PROVIDER:-kind}"
NS="${FERRUMQ_E2E_NAMESPACE:-ferrumq-e2e}"
OP_NS="ferrumq-system"
RELEASE="ferrumq-operator"
BROKER="dev"
TIMEOUT="${FERRUMQ_E2E_TIMEOUT:-300}"
KEEP="${FERRUMQ_E2E_KEEP:-0}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
TAG="${FERRUMQ_E2E_TAG:-$VERSION}"
CREATED_CLUSTER=""
PF_PID=""
WORK="$(mktemp -d)"

log() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[e2e] FAILED: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "needs '$1' on PATH"; }

kc() { kubectl --context "$CONTEXT" "$@"; }

# wait_until DESCRIPTION COMMAND...: retries COMMAND every 2 s for TIMEOUT s.
wait_until() {
    local what="$1"
    shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for: $what"
        sleep 2
    done
}

diagnostics() {
    [ -n "${CONTEXT:-}" ] || return 0
    echo "---- diagnostics ----" >&2
    kc get mqttbrokers,statefulsets,services,configmaps,pods,events -n "$NS" -o wide >&2 || true
    kc get mqttbroker "$BROKER" -n "$NS" -o yaml >&2 || true
    kc logs -n "$OP_NS" "deployment/$RELEASE" --tail=200 >&2 || true
}

cleanup() {
    local rc=$?
    [ -z "$PF_PID" ] || kill "$PF_PID" 2>/dev/null || true
    [ "$rc" -eq 0 ] || diagnostics
    if [ "$KEEP" != 1 ]; then
        if [ -n "$CREATED_CLUSTER" ]; then
            log "deleting $PROVIDER cluster $CREATED_CLUSTER"
            case "$PROVIDER" in
            kind) kind delete cluster --name "$CREATED_CLUSTER" || true ;;
            k3d) k3d cluster delete "$CREATED_CLUSTER" || true ;;
            esac
        elif [ -n "${CONTEXT:-}" ]; then
            kc delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
            helm --kube-context "$CONTEXT" uninstall "$RELEASE" -n "$OP_NS" >/dev/null 2>&1 || true
        fi
    fi
    rm -rf "$WORK"
    if [ "$rc" -eq 0 ]; then echo "[e2e] PASSED"; else echo "[e2e] FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT

for tool in kubectl helm mosquitto_pub mosquitto_sub curl; do need "$tool"; done

# --- 1. cluster ----------------------------------------------------------------
if [ -n "${FERRUMQ_E2E_CLUSTER:-}" ]; then
    CONTEXT="$FERRUMQ_E2E_CLUSTER"
    LOAD="${FERRUMQ_E2E_LOAD:-none}"
    log "using existing kubectl context $CONTEXT (images: $LOAD)"
else
    name="ferrumq-e2e-$$"
    case "$PROVIDER" in
    kind)
        need kind
        log "creating kind cluster $name"
        CREATED_CLUSTER="$name"
        kind create cluster --name "$name" --wait 120s
        CONTEXT="kind-$name"
        ;;
    k3d)
        need k3d
        log "creating k3d cluster $name"
        CREATED_CLUSTER="$name"
        k3d cluster create "$name" --wait --no-lb
        CONTEXT="k3d-$name"
        ;;
    *) die "FERRUMQ_E2E_PROVIDER must be kind or k3d, not '$PROVIDER'" ;;
    esac
    LOAD="$PROVIDER:$name"
fi
kc version >/dev/null || die "cannot reach the cluster of context $CONTEXT"

# --- 2. images -------------------------------------------------------------------
BROKER_IMAGE="ferrumq/ferrumq-broker:$TAG"
OPERATOR_IMAGE="ferrumq/ferrumq-operator:$TAG"
if [ "${FERRUMQ_E2E_SKIP_BUILD:-0}" != 1 ]; then
    need docker
    log "building $BROKER_IMAGE and $OPERATOR_IMAGE"
    scripts/build-image --tag "$TAG"
fi
case "$LOAD" in
kind:*) log "loading images into kind"; kind load docker-image --name "${LOAD#kind:}" "$BROKER_IMAGE" "$OPERATOR_IMAGE" ;;
k3d:*) log "importing images into k3d"; k3d image import --cluster "${LOAD#k3d:}" "$BROKER_IMAGE" "$OPERATOR_IMAGE" ;;
none) log "not loading images; the cluster must be able to pull $BROKER_IMAGE and $OPERATOR_IMAGE" ;;
*) die "FERRUMQ_E2E_LOAD must be kind:NAME, k3d:NAME or none, not '$LOAD'" ;;
esac

# --- 3. operator -------------------------------------------------------------------
log "helm install charts/ferrumq-operator into $OP_NS"
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" charts/ferrumq-operator \
    --namespace "$OP_NS" --create-namespace \
    --set-string image.tag="$TAG" \
    --wait --timeout "${TIMEOUT}s"
kc wait --for=condition=Established --timeout="${TIMEOUT}s" crd/mqttbrokers.ferrumq.io
kc rollout status -n "$OP_NS" "deployment/$RELEASE" --timeout="${TIMEOUT}s"

# --- 4. broker ----------------------------------------------------------------------
log "applying examples/dev-broker.yaml in $NS"
kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f -
kc apply -n "$NS" -f examples/dev-broker.yaml
kc wait -n "$NS" --for=condition=Available --timeout="${TIMEOUT}s" "mqttbroker/$BROKER"
kc get -n "$NS" "mqttbroker/$BROKER"

sts_hash() {
    kc get -n "$NS" "statefulset/$BROKER" -o jsonpath='{.spec.template.metadata.annotations.ferrumq\.io/config-hash}'
}
sts_replicas() { kc get -n "$NS" "statefulset/$BROKER" -o jsonpath='{.spec.replicas}'; }

# --- 5. publish / subscribe --------------------------------------------------------------
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18830)"
log "port-forwarding service/$BROKER-mqtt to 127.0.0.1:$PORT"
kc port-forward -n "$NS" "service/$BROKER-mqtt" "$PORT:1883" >"$WORK/port-forward.log" 2>&1 &
PF_PID=$!
wait_until "port-forward to accept MQTT" mosquitto_pub -h 127.0.0.1 -p "$PORT" -t e2e/ping -m ping -q 0

mosquitto_sub -h 127.0.0.1 -p "$PORT" -t 'e2e/#' -q 1 -C 1 -W 60 -v >"$WORK/received" &
SUB_PID=$!
sleep 3 # let the subscription reach the broker before publishing
MESSAGE="hello-from-e2e-$$"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -t e2e/hello -m "$MESSAGE" -q 1
wait "$SUB_PID" || die "mosquitto_sub got nothing within 60 s"
[ "$(cat "$WORK/received")" = "e2e/hello $MESSAGE" ] || die "received '$(cat "$WORK/received")'"
log "publish/subscribe through the client Service works"
kill "$PF_PID" 2>/dev/null || true
wait "$PF_PID" 2>/dev/null || true
PF_PID=""

# --- 6. config change rolls the StatefulSet ----------------------------------------------
old_hash="$(sts_hash)"
[ -n "$old_hash" ] || die "StatefulSet $BROKER has no ferrumq.io/config-hash annotation"
log "changing spec.broker.limits.maxConnections (config hash now $old_hash)"
kc patch -n "$NS" "mqttbroker/$BROKER" --type merge \
    -p '{"spec":{"broker":{"limits":{"maxConnections":1234}}}}'
hash_changed() { local h; h="$(sts_hash)"; [ -n "$h" ] && [ "$h" != "$old_hash" ]; }
wait_until "the config-hash annotation to change" hash_changed
kc rollout status -n "$NS" "statefulset/$BROKER" --timeout="${TIMEOUT}s"
kc get -n "$NS" "configmap/$BROKER-config" -o jsonpath='{.data.ferrumq\.yaml}' | grep -q 'maxConnections: 1234' ||
    die "the ConfigMap does not carry the new setting"
kc wait -n "$NS" --for=condition=Available --timeout="${TIMEOUT}s" "mqttbroker/$BROKER"
log "config change rolled the StatefulSet ($old_hash -> $(sts_hash))"

# The operator's per-broker replica gauges (the dashboard's desired-vs-ready panel).
kc port-forward -n "$OP_NS" "deployment/$RELEASE" "$PORT:http" >"$WORK/port-forward-op.log" 2>&1 &
PF_PID=$!
metrics_have_broker() {
    curl -fsS "http://127.0.0.1:$PORT/metrics" |
        grep -E "^ferrumq_operator_broker_replicas\{.*kind=\"ready\".*name=\"$BROKER\".*namespace=\"$NS\".*\} 1$"
}
wait_until "ferrumq_operator_broker_replicas for $NS/$BROKER on the operator's /metrics" metrics_have_broker
kill "$PF_PID" 2>/dev/null || true
wait "$PF_PID" 2>/dev/null || true
PF_PID=""

# --- 7. stopped scales to zero -------------------------------------------------------------
log "setting clusterOperation.stopped"
kc patch -n "$NS" "mqttbroker/$BROKER" --type merge -p '{"spec":{"clusterOperation":{"stopped":true}}}'
sts_is_zero() { [ "$(sts_replicas)" = 0 ]; }
wait_until "StatefulSet replicas 0" sts_is_zero
no_pods() { [ -z "$(kc get pods -n "$NS" -l "app.kubernetes.io/instance=$BROKER" -o name)" ]; }
wait_until "the broker pods to terminate" no_pods
stopped_reason() {
    [ "$(kc get -n "$NS" "mqttbroker/$BROKER" -o jsonpath='{.status.conditions[?(@.type=="Available")].reason}')" = Stopped ]
}
wait_until "Available reason Stopped" stopped_reason
log "stopped: StatefulSet at 0 replicas"

# --- 8. deletion garbage-collects the children ---------------------------------------------
log "deleting the MqttBroker"
kc delete -n "$NS" "mqttbroker/$BROKER" --wait=true --timeout="${TIMEOUT}s"
children() {
    kc get statefulsets,services,configmaps,poddisruptionbudgets -n "$NS" \
        -l "app.kubernetes.io/instance=$BROKER,app.kubernetes.io/managed-by=ferrumq-operator" -o name
}
no_children() { [ -z "$(children)" ]; }
wait_until "garbage collection of the StatefulSet, Services, ConfigMap and PDB" no_children
log "children garbage-collected"
