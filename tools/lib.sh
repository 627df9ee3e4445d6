# shellcheck shell=bash
# Shared helpers for tools/cluster, tools/netns-cluster and tools/test. Source it; do
# not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here assumes `set -euo pipefail` in the caller.

CHORUS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CHORUS_REPO_ROOT

log()  { printf '%s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed"
    fi
}

# Make sure the system packages the build needs are present. A fresh Debian with
# only the Swift toolchain lacks libsodium-dev (the CSodium system library),
# libsqlite3-dev (CSQLite) and libjemalloc-dev (CJemalloc, the agent's allocator).
ensure_deps() {
    local -a missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    pkg-config --exists libsodium 2>/dev/null || missing+=(libsodium-dev)
    pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
    pkg-config --exists jemalloc 2>/dev/null || missing+=(libjemalloc-dev)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null 2>&1 \
        || die "${missing[*]} missing and apt-get is not available; install libsodium, sqlite3, jemalloc (dev) and pkg-config by hand"
    log "==> installing ${missing[*]} (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    pkg-config --exists libsodium || die "libsodium still not found by pkg-config after installing it"
    pkg-config --exists sqlite3 || die "sqlite3 still not found by pkg-config after installing libsqlite3-dev"
    pkg-config --exists jemalloc || die "jemalloc still not found by pkg-config after installing libjemalloc-dev"
}

# Build configuration: debug unless CHORUS_BUILD_CONFIG=release.
build_config() {
    local cfg="${CHORUS_BUILD_CONFIG:-debug}"
    case "$cfg" in
        debug|release) printf '%s\n' "$cfg" ;;
        *) die "CHORUS_BUILD_CONFIG must be 'debug' or 'release' (got '$cfg')" ;;
    esac
}

# swift build in the repository root, in the chosen configuration.
build_chorus() {
    local cfg
    cfg="$(build_config)"
    log "==> swift build -c $cfg"
    (cd "$CHORUS_REPO_ROOT" && swift build -c "$cfg")
}

# Path of the built chorus binary (does not build).
chorus_bin() {
    local cfg dir
    cfg="$(build_config)"
    dir="$(cd "$CHORUS_REPO_ROOT" && swift build -c "$cfg" --show-bin-path)"
    printf '%s/chorus\n' "$dir"
}

# True when PID is alive and its command line is a chorus agent: argv[0] (or
# argv[1], behind an interpreter) is a file named "chorus" and the next argument
# is "agent". Guards every signal these tools send: a stale pid file may name a
# recycled PID.
is_chorus_agent_pid() {
    local pid="$1" k
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    local -a argv=()
    mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || return 1
    for k in 0 1; do
        ((${#argv[@]} > k + 1)) || return 1
        if [[ "${argv[k]##*/}" == "chorus" && "${argv[k + 1]}" == "agent" ]]; then
            return 0
        fi
    done
    return 1
}

# Wait until none of the given PIDs is a running chorus agent, up to TIMEOUT seconds;
# prints the PIDs still running then. Usage: wait_gone TIMEOUT PID...
wait_gone() {
    local timeout="$1"
    shift
    local deadline=$((SECONDS + timeout)) pid
    local -a left=("$@")
    while ((${#left[@]} > 0)) && ((SECONDS < deadline)); do
        sleep 0.1
        local -a still=()
        for pid in "${left[@]}"; do
            is_chorus_agent_pid "$pid" && still+=("$pid")
        done
        left=("${still[@]+"${still[@]}"}")
    done
    if ((${#left[@]} > 0)); then
        printf '%s\n' "${left[@]}"
    fi
}
