#!/bin/bash
# Fault bed (issue 15): downloads over a bad link and across a partition, between network
# namespaces this script creates. Needs root (CI runs as root); without namespaces it fails.
#
# Two links, each two namespaces joined through a user-space bridge (tests/interop/netbridge.py:
# this kernel has tc but no netem). Each namespace has one veth whose root-side end the
# bridge reads and writes with AF_PACKET sockets; every frame, each way, is delayed and may be
# dropped; "down" drops all. Checksum and segmentation offloads are off on the namespace ends,
# so the frames the bridge copies are complete and no larger than the MTU (the bridge counts
# any larger one as `oversize`, and the run fails if there is one).
#   link L: ns A (198.18.0.1, 100.64.0.1; the seeds) <-> ns B (198.18.0.2, 100.64.0.2; the fetchers)
#   link P: ns C (198.18.1.1; tracker, libtorrent, Junction eD2k and Gnutella seeds) <->
#           ns D (198.18.1.2; the Junction fetchers and a Junction gateway)
# No namespace has a default route; nothing else is reachable. In ns D a prohibit rule keeps
# 198.18.1.2 from reaching itself, so its fetchers get every byte over link P, none from each
# other. aMule gets 100.64.0.0/10 addresses because aMule 2.3.3 treats 198.18.0.0/15 and
# 127.0.0.0/8 as reserved.
#
# Cases, each fetched by a Junction peer in ns B (D), bytes compared with cmp:
#   bt-lt      BitTorrent, from libtorrent (python3-libtorrent), Junction's tracker in ns A
#   bt-j       BitTorrent, from a Junction seed (bt_interop of junction-bittorrent)
#   ed2k-amule eD2k, from aMule 2.3.3 (amuled, no server: Junction dials aMule's port)
#   ed2k-j     eD2k, from a Junction eD2k peer (tests/examples/fault_peer.rs)
#   gnut-j     Gnutella, from a Junction ultrapeer, the fetcher its leaf (fault_peer.rs).
#              No real Gnutella peer: gtk-gnutella is in no registry (shared/peers/README.md).
#   lt-j       BitTorrent the other way: libtorrent downloads from the Junction seed of bt-j
#   bt-part    BitTorrent from libtorrent over link P,
#   gw-part    the same torrent from the same libtorrent over link P, fetched by the gateway
#              itself, as users run it: `junction serve` (BitTorrent only) in ns D, and
#              `junction get` + `junction cat -o` (tests/interop/faults_gw_get.sh). This is
#              the gateway's transfer manager (its retries, its resume after sources go,
#              its verification and ReadContent), not an adapter driven alone,
#   ed2k-part  eD2k from a Junction eD2k peer over link P,
#   gnut-part  Gnutella from a Junction ultrapeer over link P: once libtorrent has uploaded
#              1 MiB, bt-part's fetcher and the gateway have verified 1 MiB and each other
#              Junction fetcher has written 1 MiB, link P goes down for 60 s, then comes
#              back; each fetch must finish by itself.
#              In the faults phase link P's seeds send at most 3 Mbit/s in all (tc tbf), so
#              the partition always falls mid-transfer.
# First every case runs once over a clean link (the bridge, no delay, no loss): the baseline.
# Then all cases run at once with 100 ms delay and 5% loss on every frame in each direction
# (so 200 ms more round trip), the -part cases with their partition on top. The table at the end
# gives each case's times and their ratio.
# Internet bootstraps are off: no DHT (bt_interop without --dht; libtorrent without --dht,
# LSD, UPnP, NAT-PMP), aMule with no server list, Kad, UPnP or update URLs, Gnutella peers
# given only each other.
# Env: FAULT_MIB (file size, default 8), FAULT_DELAY_MS (100), FAULT_LOSS (0.05),
# PARTITION_S (60), PART_RATE (3mbit: link P's seeds in all, faults phase only), CARGO_TARGET_DIR, FAULT_BT_BIN, FAULT_PEER_BIN,
# FAULT_JUNCTION_BIN (the `junction` binary), KEEP_WORK=1 (keep the work dir).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
MIB=${FAULT_MIB:-8}
DELAY_MS=${FAULT_DELAY_MS:-100}
LOSS=${FAULT_LOSS:-0.05}
PARTITION_S=${PARTITION_S:-60}
PART_RATE=${PART_RATE:-3mbit}
PY=/usr/bin/python3
T_START=$(date +%s)

die() { echo "FAIL faults: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root to create network namespaces (running as uid $(id -u))"
command -v ip >/dev/null || die "iproute2 (ip) is missing"

export DEBIAN_FRONTEND=noninteractive
if ! command -v amuled >/dev/null || ! command -v amulecmd >/dev/null \
    || ! $PY -c 'import libtorrent' 2>/dev/null; then
  echo "installing amule-daemon amule-utils python3-libtorrent" >&2
  apt-get update -qq || true
  apt-get install -y -qq amule-daemon amule-utils python3-libtorrent >/dev/null
fi

# FAULT_BT_BIN / FAULT_PEER_BIN: prebuilt drivers (skip the builds).
BT=${FAULT_BT_BIN:-}
if [ -z "$BT" ]; then
  (cd "$ROOT" && cargo build --release -q -p junction-bittorrent --example bt_interop)
  BT=$CARGO_TARGET_DIR/release/examples/bt_interop
fi
JP=${FAULT_PEER_BIN:-}
if [ -z "$JP" ]; then
  bash "$HERE/build_debug.sh"
  JP=$CARGO_TARGET_DIR/debug/examples/fault_peer
fi
# The gateway: `cargo test` (and build_debug.sh above) builds it; built here if it is not.
JB=${FAULT_JUNCTION_BIN:-$CARGO_TARGET_DIR/debug/junction}
if [ ! -x "$JB" ]; then
  (cd "$ROOT" && cargo build -q -p junction --bin junction)
fi

WORK=$(mktemp -d /tmp/junction-faults.XXXXXX)
ID=jf$$
NS_A=${ID}a NS_B=${ID}b NS_C=${ID}c NS_D=${ID}d
PIDS=()
BRIDGES=()
AMULE_BASE=$WORK/amule

cleanup() {
  local rc=$?
  set +e
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  BASE=$AMULE_BASE bash "$HERE/ed2k_amule_stop.sh" faults >/dev/null 2>&1
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  for p in "${BRIDGES[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${BRIDGES[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # Deleting a namespace deletes its veth, and with it the root-side end.
  for ns in "$NS_A" "$NS_B" "$NS_C" "$NS_D"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for ifn in ${ID}a1 ${ID}b1 ${ID}c1 ${ID}d1; do ip link del "$ifn" 2>/dev/null; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the two links ---------------------------------------------------------------------
# make_ns NS ROOT_IF ADDR/PREFIX...: a namespace with lo and eth0, the other end of eth0
# (ROOT_IF) left in the root namespace for the bridge.
make_ns() {
  local ns=$1 rif=$2; shift 2
  ip netns add "$ns" || die "cannot create network namespace $ns (are namespaces available?)"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
  ip link add eth0 netns "$ns" type veth peer name "$rif" || die "cannot create a veth pair for $ns"
  sysctl -qw "net.ipv6.conf.$rif.disable_ipv6=1" 2>/dev/null || true
  ip link set "$rif" up promisc on
  ip netns exec "$ns" ip link set lo up
  for a in "$@"; do ip netns exec "$ns" ip addr add "$a" dev eth0; done
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" $PY "$HERE/netbridge.py" offload-off eth0 >/dev/null \
    || die "cannot turn the offloads off on $ns eth0"
  [ -z "$(ip netns exec "$ns" ip route show default)" ] || die "$ns has a default route"
}
# set_link NAME delay_ms=.. loss=.. down=..: the bridge re-reads its control file.
set_link() {
  local ctl=$WORK/link-$1.ctl; shift
  echo "$*" > "$ctl.tmp" && mv "$ctl.tmp" "$ctl"
}
make_ns "$NS_A" ${ID}a1 198.18.0.1/24 100.64.0.1/24
make_ns "$NS_B" ${ID}b1 198.18.0.2/24 100.64.0.2/24
make_ns "$NS_C" ${ID}c1 198.18.1.1/24
make_ns "$NS_D" ${ID}d1 198.18.1.2/24
# The gateway (gw-part) and bt-part's fetcher are in one swarm, and the tracker gives each
# the other's address, 198.18.1.2. Between them, bytes would stay in ns D: across the
# partition they could trade pieces, and one fetcher coming back could carry the other. A
# prohibit rule ahead of the local table refuses 198.18.1.2 -> 198.18.1.2 at once (EACCES).
ip netns exec "$NS_D" ip rule add pref 100 lookup local \
  && ip netns exec "$NS_D" ip rule del pref 0 \
  && ip netns exec "$NS_D" ip rule add pref 10 from 198.18.1.2 to 198.18.1.2 prohibit \
  || die "cannot keep ns D's fetchers apart (ip rule)"
for l in L P; do set_link $l delay_ms=0 loss=0 down=0; done
$PY "$HERE/netbridge.py" run ${ID}a1 ${ID}b1 "$WORK/link-L.ctl" 2> "$WORK/bridge-L.log" &
BRIDGES+=($!)
$PY "$HERE/netbridge.py" run ${ID}c1 ${ID}d1 "$WORK/link-P.ctl" 2> "$WORK/bridge-P.log" &
BRIDGES+=($!)
sleep 0.5
# Each link carries a TCP connection both ways before anything else starts.
link_check() {
  local from=$1 to=$2
  ip netns exec "$from" $PY -c '
import socket, sys
for _ in range(50):
    try:
        socket.create_connection((sys.argv[1], 9), timeout=0.2).close(); sys.exit(0)
    except ConnectionRefusedError:
        sys.exit(0)    # the far host answered (RST): the link carries frames
    except OSError:
        pass
sys.exit(1)' "$to" || die "no connectivity from $from to $to through the bridge"
}
link_check "$NS_B" 198.18.0.1; link_check "$NS_B" 100.64.0.1; link_check "$NS_D" 198.18.1.1
ip netns exec "$NS_D" $PY -c '
import socket, sys
try:
    socket.create_connection(("198.18.1.2", 9), timeout=1).close()
except PermissionError:
    sys.exit(0)
except OSError:
    pass
sys.exit(1)' || die "ns D reaches its own 198.18.1.2: the prohibit rule does not hold"
echo "links up: $NS_A <-> $NS_B (198.18.0.0/24, 100.64.0.0/24), $NS_C <-> $NS_D (198.18.1.0/24)"

# --- seeds -------------------------------------------------------------------------------
# in_ns NS LOG CMD...: start CMD in NS in the background, its pid kept for the cleanup.
in_ns() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" > "$log" 2>&1 &
  PIDS+=($!)
}
# wait_for SECS WHAT TEST...: poll TEST every 0.2 s.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}
mkdir -p "$WORK/seed" "$WORK/get" "$WORK/amule-share"
for f in lt j ed2k gnut part ed2k-part gnut-part; do head -c $((MIB << 20)) /dev/urandom > "$WORK/seed/$f.bin"; done
head -c $((MIB << 20)) /dev/urandom > "$WORK/amule-share/amule.bin"
SIZE=$((MIB << 20))

in_ns "$NS_A" "$WORK/tracker-L.log" "$BT" tracker 198.18.0.1:6969
in_ns "$NS_C" "$WORK/tracker-P.log" "$BT" tracker 198.18.1.1:6969
$PY "$HERE/bt_lt_peer.py" create "$WORK/seed/lt.bin" "$WORK/lt.torrent" http://198.18.0.1:6969/announce >/dev/null
$PY "$HERE/bt_lt_peer.py" create "$WORK/seed/part.bin" "$WORK/part.torrent" http://198.18.1.1:6969/announce >/dev/null
in_ns "$NS_A" "$WORK/lt-seed.log" $PY "$HERE/bt_lt_peer.py" run --ip 198.18.0.1 --port 6881 \
  --seed "$WORK/lt.torrent:$WORK/seed" --status-file "$WORK/lt-seed.json"
in_ns "$NS_C" "$WORK/lt-part.log" $PY "$HERE/bt_lt_peer.py" run --ip 198.18.1.1 --port 6881 \
  --seed "$WORK/part.torrent:$WORK/seed" --status-file "$WORK/lt-part.json"
in_ns "$NS_A" "$WORK/j-bt-seed.log" "$BT" seed 198.18.0.1:6882 "$WORK/seed/j.bin" "$WORK/j.torrent" \
  http://198.18.0.1:6969/announce
in_ns "$NS_A" "$WORK/j-ed2k-seed.log" "$JP" ed2k-seed 100.64.0.1:4662 "$WORK/seed/ed2k.bin" "$WORK/ed2k.info"
in_ns "$NS_A" "$WORK/j-gnut-seed.log" "$JP" gnutella-seed 198.18.0.1:6346 "$WORK/seed/gnut.bin" "$WORK/gnut.info"
in_ns "$NS_C" "$WORK/j-ed2k-part-seed.log" "$JP" ed2k-seed 198.18.1.1:4662 "$WORK/seed/ed2k-part.bin" "$WORK/ed2k-part.info"
in_ns "$NS_C" "$WORK/j-gnut-part-seed.log" "$JP" gnutella-seed 198.18.1.1:6346 "$WORK/seed/gnut-part.bin" "$WORK/gnut-part.info"

# aMule, from the interop start script with its bind address moved off 127.0.0.1; no server.
sed 's/^Address=127\.0\.0\.1$/Address=100.64.0.1/' "$HERE/ed2k_amule_start.sh" > "$WORK/amule_start.sh"
grep -q '^Address=100.64.0.1$' "$WORK/amule_start.sh" || die "ed2k_amule_start.sh no longer sets Address=127.0.0.1"
AMULE_TCP=4672 AMULE_EC=4712
ip netns exec "$NS_A" env BASE="$AMULE_BASE" bash "$WORK/amule_start.sh" faults $AMULE_TCP 0 $AMULE_EC \
  "$WORK/amule-share" none > "$WORK/amule-start.log" 2>&1 \
  || { cat "$WORK/amule-start.log" >&2; die "amuled did not start"; }
amule_shares() {
  ip netns exec "$NS_A" amulecmd -h 127.0.0.1 -p $AMULE_EC -P secret -c "show shared" 2>/dev/null | grep -q amule.bin
}
wait_for 90 "aMule to hash its shared file" amule_shares
wait_for 60 "the Junction BitTorrent seed" test -s "$WORK/j.torrent"
wait_for 60 "the Junction eD2k seed" test -s "$WORK/ed2k.info"
wait_for 60 "the Junction Gnutella seed" test -s "$WORK/gnut.info"
wait_for 60 "the Junction seeds on link P" test -s "$WORK/ed2k-part.info" -a -s "$WORK/gnut-part.info"
wait_for 30 "the libtorrent seeds" test -s "$WORK/lt-seed.json" -a -s "$WORK/lt-part.json"
read -r ED2K_J_HASH _ < "$WORK/ed2k.info"
read -r GNUT_HASH _ < "$WORK/gnut.info"
read -r ED2K_P_HASH _ < "$WORK/ed2k-part.info"
read -r GNUT_P_HASH _ < "$WORK/gnut-part.info"
read -r ED2K_A_HASH _ <<< "$("$JP" ed2k-hash "$WORK/amule-share/amule.bin")"
echo "seeds up after $(( $(date +%s) - T_START )) s: libtorrent x2, Junction BitTorrent/eD2k/Gnutella, aMule; ${MIB} MiB each"

# --- the gateway (gw-part) ------------------------------------------------------------------
# BitTorrent only, peers on 198.18.1.2:6881, no DHT and no trackers of its own (the torrent's
# is the one in ns C), the gRPC API on ns D's own loopback, no HTTP fronts. One gateway per
# phase, each with a fresh data dir, so the faults phase downloads everything again (and no
# gateway seeds the file to bt-part's fetcher).
GW_API=127.0.0.1:4470
cat > "$WORK/gw.toml" <<EOF
[gateway]
listen = "$GW_API"
bridge_on_demand = false

[http]
enabled = false

[ed2k]
enabled = false

[gnutella]
enabled = false

[bittorrent]
enabled = true
listen = "198.18.1.2:6881"
trackers = []

[bittorrent.dht]
enabled = false
bootstrap = []

[bittorrent.tracker]
enabled = false
EOF
GW_PID=""
gw_online() {
  ip netns exec "$NS_D" "$JB" --server "http://$GW_API" networks --json 2>/dev/null \
    | grep '"id":"bittorrent"' | grep -q '"state":"online"'
}
# gw_start PHASE: `junction serve` in ns D, its log gw-serve-PHASE.log, its data gw-data-PHASE.
gw_start() {
  ip netns exec "$NS_D" env -u JUNCTION_LISTEN -u JUNCTION_HTTP_LISTEN -u JUNCTION_DATA_DIR -u JUNCTION_TOKEN \
    RUST_LOG=info,junction_bittorrent=debug,junction_gateway=debug \
    "$JB" serve --config "$WORK/gw.toml" --data-dir "$WORK/gw-data-$1" > "$WORK/gw-serve-$1.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_for 30 "the gateway in $NS_D to serve its API" gw_online
}
gw_stop() {
  [ -n "$GW_PID" ] || return 0
  kill -INT "$GW_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$GW_PID" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  GW_PID=""
}

# --- cases -------------------------------------------------------------------------------
CASES="bt-lt bt-j lt-j ed2k-amule ed2k-j gnut-j bt-part gw-part ed2k-part gnut-part"
PART_CASES="bt-part gw-part ed2k-part gnut-part"
declare -A SRC=([bt-lt]=seed/lt.bin [bt-j]=seed/j.bin [lt-j]=seed/j.bin
  [ed2k-amule]=amule-share/amule.bin [ed2k-j]=seed/ed2k.bin [gnut-j]=seed/gnut.bin
  [bt-part]=seed/part.bin [gw-part]=seed/part.bin [ed2k-part]=seed/ed2k-part.bin
  [gnut-part]=seed/gnut-part.bin)
# Where a case's fetcher leaves the file: NAME-PHASE.bin, but libtorrent saves into a folder.
out_of() { if [ "$1" = lt-j ]; then echo "$WORK/get/lt-j-$2/j.bin"; else echo "$WORK/get/$1-$2.bin"; fi; }
# start_case NAME PHASE TIMEOUT: the fetch runs in the background; NAME-PHASE.res gets
# "EXIT_CODE SECONDS" when it ends.
start_case() {
  local name=$1 phase=$2 limit=$3 out=$WORK/get/$1-$2.bin ns=$NS_B cmd
  case $name in
    bt-lt)      cmd=("$BT" fetch 198.18.0.2:0 "$out" --torrent "$WORK/lt.torrent" --timeout "$limit") ;;
    bt-j)       cmd=("$BT" fetch 198.18.0.2:0 "$out" --torrent "$WORK/j.torrent" --timeout "$limit") ;;
    ed2k-amule) cmd=("$JP" ed2k-fetch 100.64.0.2:0 100.64.0.1:$AMULE_TCP "$ED2K_A_HASH" $SIZE "$out" "$limit") ;;
    ed2k-j)     cmd=("$JP" ed2k-fetch 100.64.0.2:0 100.64.0.1:4662 "$ED2K_J_HASH" $SIZE "$out" "$limit") ;;
    gnut-j)     cmd=("$JP" gnutella-fetch 198.18.0.2:0 198.18.0.1:6346 "$GNUT_HASH" $SIZE "$out" "$limit") ;;
    lt-j)       cmd=($PY "$HERE/bt_lt_peer.py" run --ip 198.18.0.2 --port 6883
                  --get "$WORK/j.torrent:$WORK/get/lt-j-$phase" --exit-when-done) ;;
    bt-part)    ns=$NS_D; cmd=("$BT" fetch 198.18.1.2:0 "$out" --torrent "$WORK/part.torrent" --timeout "$limit") ;;
    gw-part)    ns=$NS_D; cmd=(bash "$HERE/faults_gw_get.sh" "$JB" "http://$GW_API" "$WORK/part.torrent" "$out") ;;
    ed2k-part)  ns=$NS_D; cmd=("$JP" ed2k-fetch 198.18.1.2:0 198.18.1.1:4662 "$ED2K_P_HASH" $SIZE "$out" "$limit") ;;
    gnut-part)  ns=$NS_D; cmd=("$JP" gnutella-fetch 198.18.1.2:0 198.18.1.1:6346 "$GNUT_P_HASH" $SIZE "$out" "$limit") ;;
  esac
  (
    t0=$(date +%s.%N)
    rc=0
    timeout -k 5 $((limit + 10)) ip netns exec "$ns" "${cmd[@]}" > "$WORK/$name-$phase.log" 2>&1 || rc=$?
    echo "$rc $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" > "$WORK/$name-$phase.res"
  ) &
  FETCHES+=($!)
}
FAIL=0
# check_case NAME PHASE: exit code 0 and bytes identical.
check_case() {
  local name=$1 phase=$2 rc secs
  read -r rc secs < "$WORK/$name-$phase.res" || { rc=99; secs=0; }
  if [ "$rc" = 0 ] && cmp -s "$WORK/${SRC[$name]}" "$(out_of "$name" "$phase")"; then
    echo "PASS $name ($phase): ${MIB} MiB in ${secs} s, bytes match"
  else
    FAIL=1
    echo "FAIL $name ($phase): exit $rc after ${secs} s$([ "$rc" = 0 ] && echo ', bytes differ')"
    echo "--- $name-$phase.log (tail)"; grep -v Deprecat "$WORK/$name-$phase.log" | tail -25
    case $name in
      bt-lt) echo "--- libtorrent seed (tail)"; grep -v Deprecat "$WORK/lt-seed.log" | tail -10 ;;
      bt-part) echo "--- libtorrent seed (tail)"; grep -v Deprecat "$WORK/lt-part.log" | tail -10 ;;
      gw-part) echo "--- gateway log gw-serve-$phase.log (tail)"; tail -40 "$WORK/gw-serve-$phase.log"
               echo "--- libtorrent seed (tail)"; grep -v Deprecat "$WORK/lt-part.log" | tail -10 ;;
      bt-j|lt-j) echo "--- Junction seed (tail)"; tail -10 "$WORK/j-bt-seed.log" ;;
      ed2k-j) echo "--- Junction seed (tail)"; tail -10 "$WORK/j-ed2k-seed.log" ;;
      gnut-j) echo "--- Junction seed (tail)"; tail -10 "$WORK/j-gnut-seed.log" ;;
      ed2k-part|gnut-part) echo "--- Junction seed (tail)"; tail -10 "$WORK/j-$name-seed.log" ;;
      ed2k-amule) echo "--- amuled log (tail)"; tail -25 "$AMULE_BASE/faults/logfile" 2>/dev/null \
                    || tail -25 "$AMULE_BASE/faults/stdout.log" ;;
    esac
  fi
}

echo "== baseline: each case alone over a clean link (the bridge, no delay or loss)"
for c in $CASES; do
  FETCHES=()
  [ "$c" != gw-part ] || gw_start base
  start_case "$c" base 120
  wait "${FETCHES[@]}" || true
  [ "$c" != gw-part ] || gw_stop
  check_case "$c" base
done

echo "== faults: ${DELAY_MS} ms delay and ${LOSS} loss each way on both links, all cases at once; link P down ${PARTITION_S} s mid-transfer"
set_link L delay_ms=$DELAY_MS loss=$LOSS down=0
set_link P delay_ms=$DELAY_MS loss=$LOSS down=0
# Link P's seeds send at most PART_RATE in all (tbf on ns C's eth0), so that no -part fetch
# can finish before the partition: unpaced, a Gnutella fetch once ended in 4.6 s, before
# libtorrent had sent its first MiB.
ip netns exec "$NS_C" tc qdisc add dev eth0 root tbf rate "$PART_RATE" burst 16kb latency 1s \
  || die "cannot pace link P with tc tbf"
sleep 0.3
lt_upload() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["torrents"][0]["total_upload"])' "$WORK/lt-part.json" 2>/dev/null || echo 0; }
# libtorrent rewrites its status every 0.5 s: take its count once it includes the baseline
# (gw-part's is the last that libtorrent served).
BASE_END=$(stat -c %Y "$WORK/gw-part-base.res")
lt_fresh() { [ "$(stat -c %Y "$WORK/lt-part.json")" -ge $((BASE_END + 2)) ]; }
wait_for 20 "libtorrent's status after the baseline" lt_fresh
gw_start fault
PART_UP0=$(lt_upload)
FETCHES=()
declare -A FPID
for c in $CASES; do start_case "$c" fault 300; FPID[$c]=${FETCHES[-1]}; done
running() { kill -0 "${FPID[$1]}" 2>/dev/null; }
# Bytes a Junction fetcher has written, from its last progress line (0 before the first).
written() { grep -o 'written [0-9]*' "$WORK/$1-fault.log" 2>/dev/null | tail -1 | cut -d' ' -f2 || echo 0; }
# Bytes a BitTorrent fetcher has verified, from its last progress line: bt_interop's
# "verified N/M MB" (whole MiB), the gateway's "verified N/M bytes" (faults_gw_get.sh).
verified() {
  local l n
  l=$(grep -o 'verified [0-9]*/[0-9]* [A-Za-z]*' "$WORK/$1-fault.log" 2>/dev/null | tail -1) || true
  n=${l#verified }; n=${n%%/*}
  case $l in
    *MB) echo $(( n << 20 )) ;;
    *bytes) echo "$n" ;;
    *) echo 0 ;;
  esac
}
report() { grep verified "$WORK/$1-fault.log" | tail -1 | sed 's/^ *//'; }
# The partition: once libtorrent has sent 1 MiB, bt-part's fetcher and the gateway have each
# verified 1 MiB (libtorrent's count is for both), and each Junction fetcher on link P has
# written 1 MiB, link P drops every frame (a fetch that ended goes on to fail).
part_ready() {
  local c
  for c in $PART_CASES; do running "$c" || return 0; done
  [ $(( $(lt_upload) - PART_UP0 )) -ge $((1 << 20)) ] || return 1
  for c in bt-part gw-part; do [ "$(verified "$c")" -ge $((1 << 20)) ] || return 1; done
  for c in ed2k-part gnut-part; do [ "$(written "$c")" -ge $((1 << 20)) ] || return 1; done
}
ended() { local c out=""; for c in $PART_CASES; do running "$c" || out="$out $c"; done; echo "$out"; }
PART_MSG=""
T_P0=$(date +%s.%N)
wait_for 120 "1 MiB of each fetch over link P" part_ready
GONE=$(ended)
if [ -n "$GONE" ]; then
  FAIL=1; PART_MSG="FAIL$GONE: the fetch ended before the partition"
else
  set_link P delay_ms=$DELAY_MS loss=$LOSS down=1
  T_DOWN=$(date +%s.%N)
  UP_DOWN=$(( $(lt_upload) - PART_UP0 ))
  GW_DOWN=$(verified gw-part)
  for c in $PART_CASES; do echo "$c: link P down; the fetch's last report: $(report "$c")"; done
  for c in bt-part gw-part; do
    [ "$(verified "$c")" -lt "$SIZE" ] || { FAIL=1; echo "FAIL $c: the whole file was verified before the partition"; }
  done
  sleep "$PARTITION_S" & PIDS+=($!); wait $!   # (a wait: a TERM or INT cleans up at once)
  UP_END=$(( $(lt_upload) - PART_UP0 ))
  set_link P delay_ms=$DELAY_MS loss=$LOSS down=0
  T_UP=$(date +%s.%N)
  for c in $PART_CASES; do echo "$c: link P up again; the fetch's last report: $(report "$c")"; done
  GONE=$(ended)
  if [ -n "$GONE" ]; then
    FAIL=1; PART_MSG="FAIL$GONE: the fetch ended during the partition"
  else
    # Resumed: the first byte libtorrent sends after the link is back (to bt-part's fetcher
    # or the gateway), and the first piece the gateway verifies after it.
    RESUME="" GW_RESUME=""
    GW_END=$(verified gw-part)
    for _ in $(seq 1 900); do
      up=$(( $(lt_upload) - PART_UP0 ))
      [ -n "$RESUME" ] || [ "$up" -le "$UP_END" ] || RESUME=$(date +%s.%N)
      [ -n "$GW_RESUME" ] || [ "$(verified gw-part)" -le "$GW_END" ] || GW_RESUME=$(date +%s.%N)
      { [ -n "$RESUME" ] || ! { running bt-part || running gw-part; }; } \
        && { [ -n "$GW_RESUME" ] || ! running gw-part; } && break
      sleep 0.2
    done
    PART_MSG=$(awk -v p0="$T_P0" -v d="$T_DOWN" -v u="$T_UP" -v r="$RESUME" -v a="$UP_DOWN" -v b="$UP_END" -v s="$PARTITION_S" \
        -v gd="$GW_DOWN" -v ge="$GW_END" -v gr="$GW_RESUME" 'BEGIN {
      printf "bt-part, gw-part: link P down %.1f s into the fetches, libtorrent having written %d bytes of the file to its sockets (%d when the link came back %d s later); ", d - p0, a, b, s;
      if (r != "") printf "its upload moved again %.1f s after the link came back. ", r - u; else printf "no upload seen after the link came back. ";
      printf "gw-part: the gateway had verified %d bytes at the partition (%d when the link came back); ", gd, ge;
      if (gr != "") printf "its verified count moved again %.1f s after the link came back", gr - u; else printf "its verified count did not move after the link came back" }')
  fi
fi
for p in "${FETCHES[@]}"; do wait "$p" || true; done
gw_stop
[ -z "$PART_MSG" ] || echo "$PART_MSG"
# What the gateway did around the partition, from its log (times from link P going down).
if [ -n "${T_DOWN:-}" ]; then
  echo "gw-part: the gateway's peer and tracker events, seconds from link P going down:"
  $PY - "$WORK/gw-serve-fault.log" "$T_DOWN" "${T_UP:-0}" <<'EOF' || true
import re, sys
from datetime import datetime
down, up = float(sys.argv[2]), float(sys.argv[3])
ansi = re.compile(r'\x1b\[[0-9;]*m')
announced_after_up = False
last = ''
for line in open(sys.argv[1], errors='replace'):
    line = ansi.sub('', line).rstrip()
    m = re.match(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+\w+\s+(.*)', line)
    if not m:
        continue
    t = datetime.fromisoformat(m.group(1)[:26] + '+00:00').timestamp() - down
    msg = m.group(2)
    if 'os error 13' in msg:      # the prohibit rule refusing ns D's other fetcher
        continue
    if re.search(r'announced url', msg):
        if up == 0 or t < up - down or announced_after_up:
            continue
        announced_after_up = True
    elif not re.search(r'peer connected|peer dropped|peer closed|outgoing peer ended|announce failed|no tracker answered|transfer complete', msg):
        continue
    if t < -5:
        continue
    what = re.sub(r'^(.*?: )?junction_\w+(::\w+)*: ', '', msg)
    # "outgoing peer ended" repeats the "peer dropped" before it.
    if what.startswith('outgoing peer ended') and last.endswith(what.split('error=', 1)[-1]):
        continue
    last = what
    print('  %+7.1f s  %s' % (t, what[:160]))
    if 'transfer complete' in msg:
        break
EOF
fi
for c in $CASES; do check_case "$c" fault; done

echo "== times (baseline: alone on a clean link; faults: all at once, ${DELAY_MS} ms + ${LOSS} loss each way)"
printf '%-11s %10s %10s %8s\n' case base_s fault_s ratio
for c in $CASES; do
  read -r _ b < "$WORK/$c-base.res" || b=0
  read -r _ f < "$WORK/$c-fault.res" || f=0
  awk -v c="$c" -v b="$b" -v f="$f" 'BEGIN { printf "%-11s %10.1f %10.1f %7.1fx\n", c, b, f, (b > 0 ? f / b : 0) }'
done
# Every frame the bridges copied must have fit the MTU (offloads off).
for l in L P; do
  $PY - "$WORK/link-$l.ctl.stats" "$l" <<'EOF' || FAIL=1
import json, sys
st = json.load(open(sys.argv[1]))
for name, d in st['dirs'].items():
    print('link %s %s: %d frames, %d lost, %d dropped while down, max frame %d, oversize %d, overflow %d, send errors %d'
          % (sys.argv[2], name, d['frames'], d['lost'], d['down'], d['max_frame'], d['oversize'], d['overflow'], d['send_err']))
    if d['oversize'] or d['max_frame'] > 1514:
        print('FAIL link %s: frames larger than the MTU reached the bridge' % sys.argv[2]); sys.exit(1)
EOF
done
echo "fault bed: $(( $(date +%s) - T_START )) s"
if [ $FAIL = 0 ]; then echo "PASS faults"; else echo "FAIL faults"; fi
exit $FAIL
