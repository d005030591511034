#!/usr/bin/env bash
# A real Docker engine for the docker-marked tests (tests/host/docker), on a machine without
# systemd and without registry access. Run as root from anywhere in the repository:
#
#   eval "$(.ci/docker.sh)"          set up (idempotent), then export DOCKER_HOST & co. (stdout)
#   .ci/docker.sh test               set up, then run the docker-marked tests
#   .ci/docker.sh stop               stop the engine this script started
#
# Steps (each timed on stderr): install docker.io, debootstrap and docker-compose when missing;
# start dockerd with its own data root, exec root, socket and pid file, off the machine's network
# setup (--iptables=false --bridge=none: builds and containers use the host's network); make
# lab-base:bookworm with debootstrap + docker import unless the engine has it; build the lab's
# images from it, trusting the host's CA bundle (networks that intercept TLS); validate
# compose.yaml. The data root persists, so a second run reuses the base image and every layer.
# Needs the lab installed with the docker extra in .venv: pip install -e '.[build,test,docker]'.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${LAB_CI_DOCKER_ROOT:-/var/lib/lab-ci-docker}   # data root, log, env file (persist)
RUN=${LAB_CI_DOCKER_RUN:-/run/lab-ci-docker}         # socket, pid file, exec root
SOCKET=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid
CA_BUNDLE=${LAB_CI_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE=lab-base:bookworm
PYTHON=${LAB_CI_PYTHON:-.venv/bin/python}
LAB=${LAB_CI_LAB:-.venv/bin/lab}
export DOCKER_HOST=unix://$SOCKET

log() { echo "== docker: $*" >&2; }
timed() {  # timed "what" command...: runs it with its output on stderr, then says how long it took
    local what=$1 start=$SECONDS
    shift
    "$@" >&2
    log "$what: $((SECONDS - start)) s"
}
answers() { [ -S "$SOCKET" ] && /usr/bin/docker version >/dev/null 2>&1; }

stop_engine() {
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        local pid
        pid=$(cat "$PIDFILE")
        kill "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        log "dockerd ($pid) stopped"
    else
        log "no dockerd of ours is running"
    fi
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        log "installed ${missing[*]}"
    else
        log "docker.io, debootstrap and docker-compose already installed"
    fi
}

start_engine() {
    if answers; then
        log "dockerd already answers at $DOCKER_HOST"
        return
    fi
    mkdir -p "$ROOT/data" "$RUN/exec"
    # Debian's dockerd, off the machine's network setup; it starts its own containerd.
    setsid /usr/sbin/dockerd --data-root "$ROOT/data" --exec-root "$RUN/exec" -H "$DOCKER_HOST" -p "$PIDFILE" \
        --iptables=false --ip-masq=false --bridge=none </dev/null >>"$ROOT/dockerd.log" 2>&1 &
    for _ in $(seq 120); do answers && break; sleep 0.25; done
    answers || { tail -20 "$ROOT/dockerd.log" >&2; log "dockerd did not answer at $DOCKER_HOST"; exit 1; }
    log "dockerd $(cat "$PIDFILE") answers at $DOCKER_HOST (log: $ROOT/dockerd.log)"
}

make_base() {
    "$PYTHON" -c 'import sys; from host.images import make_base_image; make_base_image(sys.argv[1], progress=print)' "$BASE" \
        | grep -v '^I: ' || true
    /usr/bin/docker image inspect "$BASE" >/dev/null
}

build_images() {
    local ca=()
    [ -f "$CA_BUNDLE" ] && ca=(--ca-bundle "$CA_BUNDLE")
    "$LAB" images build --base "$BASE" "${ca[@]}"
}

write_env() {
    {
        echo "export DOCKER_HOST=$DOCKER_HOST"
        [ -f "$CA_BUNDLE" ] && echo "export LAB_IMAGES_CA_BUNDLE=$CA_BUNDLE"
    } >"$ROOT/env"
    log "environment for the tests in $ROOT/env"
    cat "$ROOT/env"
}

case ${1:-setup} in
stop)
    stop_engine
    exit 0
    ;;
setup | test) ;;
*)
    echo "usage: $0 [setup|test|stop]" >&2
    exit 2
    ;;
esac

[ "$(id -u)" = 0 ] || { log "run as root (installs packages, starts dockerd, runs debootstrap)"; exit 2; }
total=$SECONDS
timed "install" install_packages
timed "start dockerd" start_engine
timed "base image $BASE" make_base
timed "images (builder, lab, emulator)" build_images
timed "compose.yaml valid" docker-compose -f compose.yaml config -q
log "set-up took $((SECONDS - total)) s"
write_env
if [ "${1:-setup}" = test ]; then
    timed "docker-marked tests" env CI="${CI:-true}" "$PYTHON" -m pytest -m docker tests/host/docker
fi
