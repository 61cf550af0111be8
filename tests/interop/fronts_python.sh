#!/bin/bash
# Interop: the fronts of issue 13 against the real clients people use, on `junction lab`:
#   (a) qbittorrent-api (PyPI), as the *arr apps use the qBittorrent WebUI API: logs in, reads
#       the versions and preferences, adds a magnet and an ed2k:// link with a category, sees
#       them complete in torrents_info, deletes one with its file
#   (b) promtool check metrics (Debian's prometheus, 2.42) on /metrics
#   (c) examples/python/search_and_download.py (grpcio + grpcio-reflection) downloads a file,
#       compared with cmp
#   (d) grpc_reflection.v1alpha.ProtoReflectionDescriptorDatabase lists the services
# Installs what it needs itself. Only 127.0.0.1 is used. Env: CARGO_TARGET_DIR, KEEP=1
# keeps the work dir, FRONTS_PROMTOOL=0 skips (b).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export DEBIAN_FRONTEND=noninteractive
PY=python3

if ! $PY -c 'import qbittorrentapi, grpc, grpc_reflection' 2>/dev/null; then
    $PY -m pip install --user --quiet qbittorrent-api grpcio grpcio-reflection
fi
# promtool comes with Debian's prometheus package (about 19 MB to download without its
# recommends); anything much larger is not worth it for one check.
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ] && [ "${FRONTS_PROMTOOL:-1}" = 1 ]; then
    apt-get update -qq || true
    SIZE=$(apt-cache show prometheus 2>/dev/null | awk '/^Size:/ {print $2; exit}')
    if [ -n "$SIZE" ] && [ "$SIZE" -lt $((40 * 1024 * 1024)) ]; then
        apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
            || echo "prometheus not installable; (b) skipped"
        PROMTOOL=$(command -v promtool || true)
    else
        echo "Debian's prometheus package is ${SIZE:-not available} bytes; (b) skipped"
    fi
fi

bash "$HERE/build_debug.sh"
BIN=$CARGO_TARGET_DIR/debug/junction

WORK=$(mktemp -d /tmp/fronts-interop.XXXXXX)
LAB_PID=
cleanup() {
    if [ -n "$LAB_PID" ]; then
        kill -INT "$LAB_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$LAB_PID" 2>/dev/null || break; sleep 0.5; done
        kill "$LAB_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

pick_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GRPC=127.0.0.1:$(pick_port)
HTTP=127.0.0.1:$(pick_port)
"$BIN" lab --data-dir "$WORK/lab" --listen "$GRPC" --http "$HTTP" --large-mib 8 --seed-rate-mib 4 \
    > "$WORK/lab.out" 2> "$WORK/lab.err" &
LAB_PID=$!
for _ in $(seq 1 120); do
    grep -q "Junction lab is running" "$WORK/lab.out" 2>/dev/null && break
    kill -0 "$LAB_PID" 2>/dev/null || { cat "$WORK/lab.err"; exit 1; }
    sleep 0.5
done
grep -q "Junction lab is running" "$WORK/lab.out" || { echo "the lab did not start"; cat "$WORK/lab.err"; exit 1; }
# The lab prints commands that work against it: a get of an ed2k:// link, a cat of a magnet.
ED2K=$(grep -o "'ed2k://[^']*'" "$WORK/lab.out" | head -1 | tr -d "'")
MAGNET=$(grep -o "'magnet:[^']*'" "$WORK/lab.out" | head -1 | tr -d "'")
echo "lab: gRPC $GRPC, HTTP $HTTP"

echo "== (a) qbittorrent-api"
HTTP="$HTTP" ED2K="$ED2K" MAGNET="$MAGNET" timeout 180 $PY - <<'EOF'
import os, time
import qbittorrentapi

import urllib.error, urllib.request

# The client logs in again by itself on a 403, so the 403 itself is checked without it.
try:
    urllib.request.urlopen(f"http://{os.environ['HTTP']}/api/v2/app/webapiVersion", timeout=10)
    raise SystemExit("webapiVersion answered before login")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
c = qbittorrentapi.Client(host=f"http://{os.environ['HTTP']}", username="admin", password="x",
                          REQUESTS_ARGS={"timeout": 30})
c.auth_log_in()
print("qBittorrent", c.app.version, "API", c.app.web_api_version,
      "save_path", c.app.preferences["save_path"])
assert c.torrents_add(urls=[os.environ["MAGNET"], os.environ["ED2K"]], category="tv-sonarr") == "Ok."
try:
    c.torrents_add(urls="magnet:?xt=urn:btih:nothex", category="tv-sonarr")
    raise SystemExit("a malformed magnet was accepted")
except qbittorrentapi.InvalidRequest400Error as e:
    print("malformed magnet refused:", str(e).strip())
assert "tv-sonarr" in c.torrents_categories()
deadline, seen = time.time() + 150, set()
while True:
    ts = c.torrents_info(category="tv-sonarr")
    seen |= {(t.name, t.state) for t in ts}
    if len(ts) == 2 and all(t.progress == 1 and t.state in ("uploading", "stalledUP") for t in ts):
        break
    if time.time() > deadline:
        raise SystemExit(f"not complete: {[(t.name, t.state, t.progress) for t in ts]}")
    time.sleep(0.5)
print("states seen:", sorted(seen))
assert any(s.endswith("DL") for _, s in seen), seen
gone = ts[0]
assert os.path.exists(gone.content_path), gone.content_path
c.torrents_delete(delete_files=True, torrent_hashes=gone.hash)
assert not os.path.exists(gone.content_path), gone.content_path
assert [t.hash for t in c.torrents_info()] == [ts[1].hash]
print("deleted", gone.name, "with its file; kept", ts[1].name)
EOF

echo "== (b) promtool check metrics"
curl -fsS "http://$HTTP/metrics" > "$WORK/metrics.txt"
grep -q 'junction_network_verified_bytes_total{network="bittorrent"}' "$WORK/metrics.txt"
if [ -n "$PROMTOOL" ]; then
    "$PROMTOOL" check metrics < "$WORK/metrics.txt"
    echo "promtool $("$PROMTOOL" --version 2>&1 | head -1 | awk '{print $3}') accepts /metrics"
fi

echo "== (c) examples/python/search_and_download.py"
timeout 180 $PY "$ROOT/examples/python/search_and_download.py" --server "$GRPC" "ocean waves" "$WORK/ocean.mp3"
cmp "$WORK/ocean.mp3" "$(find "$WORK/lab/world" -name 'Lab Ocean Waves.mp3' | head -1)"
echo "the downloaded file matches the lab's"

echo "== (d) grpc_reflection.v1alpha lists the services"
GRPC="$GRPC" timeout 60 $PY - <<'EOF'
import os, grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

db = ProtoReflectionDescriptorDatabase(grpc.insecure_channel(os.environ["GRPC"]))
services = set(db.get_services())
print("services:", sorted(services))
assert {"junction.v1.Gateway", "grpc.health.v1.Health"} <= services, services
EOF
echo "fronts interop: all passed"
