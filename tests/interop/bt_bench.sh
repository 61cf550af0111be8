#!/bin/bash
# Benchmark: one libtorrent seeder serves a BENCH_MB (default 1024) MiB torrent on loopback;
# Junction, a libtorrent leecher and rqbit (when installed) each download it from that
# seeder, BENCH_RUNS times (default 1) in turn. Prints each time, MB/s and ratios, plus one
# core's SHA-1 speed (`openssl speed sha1`, and the `sha1` crate Junction hashes with)
# measured in the same run. Loopback only: no DHT, LSD, UPnP or outside tracker anywhere.
#
# The seeder adds the torrent without seed mode, so it hashes its file before the first
# leecher arrives (libtorrent's seed mode verifies each piece lazily on its first request,
# which would charge that hashing to whichever leecher goes first). It runs with larger send
# buffers and request queues than libtorrent's defaults, which cuts its CPU time per GiB
# by about a quarter here.
#
# rqbit is optional (not in CI): RQBIT=/path/to/rqbit, else /work/rqbit/bin/rqbit or rqbit on
# PATH (`cargo install rqbit --locked`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MB=${BENCH_MB:-1024}
RUNS=${BENCH_RUNS:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || apt-get install -y python3-libtorrent >/dev/null
(cd "$ROOT" && cargo build --release -q -p junction-bittorrent --example bt_interop)
BIN=$CARGO_TARGET_DIR/release/examples/bt_interop
RQBIT=${RQBIT:-}
if [ -z "$RQBIT" ]; then
  if [ -x /work/rqbit/bin/rqbit ]; then RQBIT=/work/rqbit/bin/rqbit; else RQBIT=$(command -v rqbit || true); fi
fi
WORK=$(mktemp -d /tmp/bt-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 1; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK" 2>/dev/null || true; }
trap cleanup EXIT
pick_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# CPU seconds (user+system) of the command it prefixes, into $WORK/cpu, when GNU time is here:
# the machine is shared, so CPU per GiB says more about a client's cost than wall time.
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -f "%U %S" -o "$WORK/cpu")
cpu() { if [ -s "$WORK/cpu" ]; then awk '{printf "%.2f s CPU", $1 + $2}' "$WORK/cpu"; rm -f "$WORK/cpu"; else echo "CPU not measured"; fi; }
rate() { echo "scale=1; $SIZE / $1 / 1000000" | bc; }

# libtorrent seeder and leecher. Leecher: polls every 50 ms, exits when the torrent is
# finished (every piece hash-checked) and its files are flushed.
cat > "$WORK/lt.py" <<'EOF'
import sys, time, signal
import libtorrent as lt
mode, ip, port, tor, save = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
sp = {'listen_interfaces': '%s:%d' % (ip, port), 'outgoing_interfaces': ip,
      'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
      'enable_incoming_utp': False, 'enable_outgoing_utp': False,
      'allow_multiple_connections_per_ip': True, 'min_announce_interval': 5,
      'alert_mask': lt.alert.category_t.error_notification | lt.alert.category_t.status_notification}
if mode == 'seed':
    sp.update({'send_buffer_watermark': 8 << 20, 'send_buffer_low_watermark': 1 << 20,
               'send_buffer_watermark_factor': 150, 'send_socket_buffer_size': 4 << 20,
               'max_allowed_in_request_queue': 4000, 'unchoke_slots_limit': 16,
               'aio_threads': 2, 'max_queued_disk_bytes': 16 << 20})
ses = lt.session(sp)
p = lt.add_torrent_params(); p.ti = lt.torrent_info(tor); p.save_path = save
h = ses.add_torrent(p)
stop = []
signal.signal(signal.SIGTERM, lambda *x: stop.append(1)); signal.signal(signal.SIGINT, lambda *x: stop.append(1))
if mode == 'get':
    for c in sys.argv[6:]:
        a, b = c.rsplit(':', 1); h.connect_peer((a, int(b)))
t0 = time.time(); said = False
while not stop:
    time.sleep(0.05)
    for al in ses.pop_alerts():
        if isinstance(al, (lt.torrent_error_alert, lt.listen_failed_alert)):
            print(al.message(), flush=True)
    if h.status().is_seeding and not said:
        said = True
        print('SEEDING' if mode == 'seed' else 'DONE in %.2fs' % (time.time() - t0), flush=True)
        if mode == 'get':
            break
if mode == 'get':
    h.flush_cache(); time.sleep(0.05)
ses.pause()
EOF

TP=$(pick_port)
"$BIN" tracker 127.0.0.1:$TP > "$WORK/tracker.log" 2>&1 & PIDS+=($!)
mkdir -p "$WORK/seed" "$WORK/j" "$WORK/lt" "$WORK/rq"
head -c $((MB * 1024 * 1024)) /dev/urandom > "$WORK/seed/bench.bin"
SIZE=$(stat -c %s "$WORK/seed/bench.bin")
/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/seed/bench.bin" "$WORK/b.torrent" "http://127.0.0.1:$TP/announce" >/dev/null
SEEDER=127.0.0.2:6891
/usr/bin/python3 "$WORK/lt.py" seed 127.0.0.2 6891 "$WORK/b.torrent" "$WORK/seed" > "$WORK/seed.log" 2>&1 & PIDS+=($!)
for _ in $(seq 240); do grep -q SEEDING "$WORK/seed.log" && break; sleep 0.5; done
grep -q SEEDING "$WORK/seed.log" || { echo "seeder did not start"; cat "$WORK/seed.log"; exit 1; }
cat "$WORK/seed/bench.bin" > /dev/null   # the seeder's file in the page cache for every leecher

# One core's SHA-1 rate, openssl and the sha1 crate taking turns (1 s each, three times,
# best of each): other load on the machine moves both alike.
sha_refs() {
  local o=0 c=0 x
  for _ in 1 2 3; do
    x=$(openssl speed -seconds 1 -bytes 16384 sha1 2>/dev/null | awk '/^sha1/ {print $2}' | tr -d k)
    x=$(echo "scale=1; $x / 1000" | bc); [ "$(echo "$x > $o" | bc)" = 1 ] && o=$x
    x=$("$BIN" sha1-speed 1 | awk '{print $3}'); [ "$(echo "$x > $c" | bc)" = 1 ] && c=$x
  done
  echo "sha1 one core: openssl $o MB/s, sha1 crate $c MB/s (crate/openssl $(echo "scale=2; $c / $o" | bc))"
  SHAS+=("$o")
}
SHAS=()
sha_refs
JTS=(); LTS=(); RQS=()
run_junction() {
  rm -f "$WORK/j/bench.bin"
  T0=$(now)
  "${TIME[@]}" "$BIN" fetch 127.0.0.3:0 "$WORK/j/bench.bin" --torrent "$WORK/b.torrent" --timeout 900 | grep RESULT
  T1=$(now)
  cmp "$WORK/seed/bench.bin" "$WORK/j/bench.bin"
  JT=$(echo "$T1 - $T0" | bc); JTS+=("$JT")
  echo "junction:   $JT s  $(rate "$JT") MB/s, $(cpu) (process start to every piece verified and written; bytes match)"
  rm -f "$WORK/j/bench.bin"
}
run_libtorrent() {
  rm -rf "$WORK/lt/bench.bin"
  T0=$(now)
  "${TIME[@]}" /usr/bin/python3 "$WORK/lt.py" get 127.0.0.4 6892 "$WORK/b.torrent" "$WORK/lt" "$SEEDER" > "$WORK/lt.log" 2>&1
  T1=$(now)
  cmp "$WORK/seed/bench.bin" "$WORK/lt/bench.bin"
  LT=$(echo "$T1 - $T0" | bc); LTS+=("$LT")
  echo "libtorrent: $LT s  $(rate "$LT") MB/s, $(cpu) (process start to finished; bytes match)"
  rm -f "$WORK/lt/bench.bin"
}
run_rqbit() {
  if [ -z "$RQBIT" ] || [ ! -x "$RQBIT" ]; then
    echo "rqbit: not installed, skipped"; return
  fi
  rm -rf "$WORK/rq"/*
  T0=$(now)
  # Peers only from --initial-peers: trackers, DHT, LSD and UPnP off; listening on 127.0.0.5.
  RC=0
  "${TIME[@]}" timeout 900 "$RQBIT" --disable-dht --disable-dht-persistence --disable-lsd --disable-trackers \
    --disable-upnp-port-forward --listen-ip 127.0.0.5 --listen-port 6893 \
    download --disable-http-api --exit-on-finish -o "$WORK/rq" --initial-peers "$SEEDER" \
    "$WORK/b.torrent" > "$WORK/rq.log" 2>&1 || RC=$?
  T1=$(now)
  if [ "$RC" = 0 ] && cmp "$WORK/seed/bench.bin" "$WORK/rq/bench.bin"; then
    RQ=$(echo "$T1 - $T0" | bc); RQS+=("$RQ")
    echo "rqbit:      $RQ s  $(rate "$RQ") MB/s, $(cpu) (process start to exit; bytes match)"
  else
    echo "rqbit: FAILED (not counted); its log ends:"; tail -5 "$WORK/rq.log"
  fi
  rm -rf "$WORK/rq"/*
}
# Each run starts with the next client, so none always goes first.
CLIENTS=(run_junction run_libtorrent run_rqbit)
for run in $(seq "$RUNS"); do
  echo "--- run $run"
  for k in 0 1 2; do
    "${CLIENTS[$(( (run - 1 + k) % 3 ))]}"
  done
done
sha_refs

best() { printf '%s\n' "$@" | sort -g | head -1; }
OSSL=$(printf '%s\n' "${SHAS[@]}" | sort -g | tail -1)
J=$(best "${JTS[@]}"); L=$(best "${LTS[@]}")
echo "=== size $SIZE bytes, best of $RUNS run(s)"
echo "junction:   $J s  $(rate "$J") MB/s"
echo "libtorrent: $L s  $(rate "$L") MB/s   junction/libtorrent speed ratio $(echo "scale=2; $L / $J" | bc)"
if [ ${#RQS[@]} -gt 0 ]; then
  R=$(best "${RQS[@]}")
  echo "rqbit:      $R s  $(rate "$R") MB/s   junction/rqbit speed ratio $(echo "scale=2; $R / $J" | bc)"
else
  echo "rqbit:      not installed, skipped"
fi
echo "openssl sha1 one core (best of the runs before and after): $OSSL MB/s; junction at $(echo "scale=0; 100 * $(rate "$J") / $OSSL" | bc)% of it"
