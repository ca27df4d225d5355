#!/bin/bash
# A/B of the UDP get's CPU cost between builds, over a veth between two network namespaces
# (MTU 1500, so 1,423-byte chunks as on Ethernet; no rate limit, so the get is CPU-bound):
#   sudo bench/veth-ab.sh ROUNDS BUILD_A.cjs BUILD_B.cjs ...    (LOSS=1: 1 % of UDP dropped; MIB=128)
# One registry and one owner (`dist/p2pshare.cjs`, the current build) in the first namespace; in
# the second, each round runs one `get --via udp` per build, alternating, and prints its CPU time
# (user + system, /usr/bin/time) per MiB and its wall time. WRAP='strace -f -c -o FILE' wraps
# the gets. Root only. The namespaces are named as test/support/netns.ts names its own
# (p2ps-PID-...), so its cleanupStale() removes them if this script is killed outright.
# BENCHMARKS.md ("Result: latest") has what it showed for the receiver's gathered writes.
set -u
[ "$(id -u)" = 0 ] || { echo "veth-ab.sh: needs root (network namespaces)" >&2; exit 2; }
[ $# -ge 2 ] || { echo "usage: veth-ab.sh ROUNDS BUILD.cjs [BUILD.cjs ...]" >&2; exit 2; }
ROUNDS=$1
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIB=${MIB:-128}
WORK=$(mktemp -d /tmp/p2pshare-veth-ab-XXXXXX)
TAG="p2ps-$$-vab"
NS_OWN="${TAG}o"
NS_GET="${TAG}g"
export XDG_CONFIG_HOME="$WORK/config" NO_COLOR=1
cleanup() {
  ip netns pids "$NS_OWN" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$NS_OWN" 2>/dev/null
  ip netns del "$NS_GET" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$NS_OWN" && ip netns add "$NS_GET" || exit 1
ip link add vab0 netns "$NS_OWN" type veth peer name vab1 netns "$NS_GET" || exit 1
ip -n "$NS_OWN" addr add 10.88.0.1/24 dev vab0
ip -n "$NS_GET" addr add 10.88.0.2/24 dev vab1
for ns in "$NS_OWN" "$NS_GET"; do ip -n "$ns" link set lo up; done
ip -n "$NS_OWN" link set vab0 up
ip -n "$NS_GET" link set vab1 up
if [ "${LOSS:-0}" != 0 ]; then
  ip netns exec "$NS_OWN" nft -f - <<NFT || exit 1
table inet vab {
  chain out {
    type filter hook output priority 0;
    meta l4proto udp numgen random mod 100 < ${LOSS} drop
  }
}
NFT
fi

mkdir -p "$WORK/share" "$WORK/config"
head -c $((MIB * 1024 * 1024)) /dev/urandom > "$WORK/share/big.bin"
CLI="$ROOT/dist/p2pshare.cjs"
URL=http://10.88.0.1:8000
ip netns exec "$NS_OWN" node "$CLI" serve-registry --host 10.88.0.1 --port 8000 --stun-port 0 > "$WORK/registry.log" 2>&1 &
sleep 1.5
ip netns exec "$NS_OWN" node "$CLI" peer --name vabowner --registry $URL --share "$WORK/share" --port 0 \
  --advertise 10.88.0.1 --no-interactive --identity "$WORK/owner.id" > "$WORK/owner.log" 2>&1 &

get() { # get BUILD [wrapper...]: one whole get, its CPU and wall time in $WORK/time
  rm -rf "$WORK/dl" && mkdir -p "$WORK/dl"
  local build=$1
  shift
  ip netns exec "$NS_GET" /usr/bin/time -f "%U %S %e" -o "$WORK/time" "$@" node "$build" get vabowner share/big.bin --via udp \
    --downloads "$WORK/dl" --registry $URL --accept-new-key --identity "$WORK/get.id" > /dev/null 2> "$WORK/get.err"
}
for i in $(seq 1 30); do get "$CLI" && break; sleep 1; done # the owner is up and the file cached
[ -s "$WORK/dl/big.bin" ] || { echo "warm-up get failed: $(tail -1 "$WORK/get.err")" >&2; exit 1; }

echo "# $MIB MiB UDP gets over a veth (MTU 1500), loss ${LOSS:-0} %, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for build in "$@"; do
    # shellcheck disable=SC2086 # WRAP is a command line to split
    if ! get "$build" ${WRAP:-}; then echo "$build round $r: FAILED: $(tail -1 "$WORK/get.err")"; continue; fi
    read -r user sys wall < "$WORK/time"
    echo "$build round $r: CPU $(echo "scale=1; ($user + $sys) * 1000 / $MIB" | bc) ms/MiB, wall $wall s"
  done
done
