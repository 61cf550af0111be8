#!/usr/bin/python3
# Captures what libtorrent sends on the peer wire, for test vectors in
# adapters/bittorrent/tests/data/. Loopback only.
# Usage: bt_capture_libtorrent.py OUT_DIR   (needs python3-libtorrent; starts its own seeder)
import os, socket, struct, sys, tempfile, time
import libtorrent as lt

out = sys.argv[1]
tmp = tempfile.mkdtemp()
data = bytes((i * 7 + 3) % 251 for i in range(300_000))
open(os.path.join(tmp, 'vector.bin'), 'wb').write(data)
fs = lt.file_storage(); lt.add_files(fs, os.path.join(tmp, 'vector.bin'))
t = lt.create_torrent(fs, 32768, lt.create_torrent.v1_only)
lt.set_piece_hashes(t, tmp)
tor = lt.bencode(t.generate())
open(os.path.join(out, 'libtorrent-vector.torrent'), 'wb').write(tor)
ti = lt.torrent_info(tor)
ih = bytes.fromhex(str(ti.info_hash()))
ses = lt.session({'listen_interfaces': '127.0.0.21:6899', 'enable_dht': False, 'enable_lsd': False,
                  'enable_upnp': False, 'enable_natpmp': False, 'enable_incoming_utp': False,
                  'enable_outgoing_utp': False, 'in_enc_policy': 2 if False else 1})
p = lt.add_torrent_params(); p.ti = ti; p.save_path = tmp; p.flags |= lt.torrent_flags.seed_mode
h = ses.add_torrent(p)
time.sleep(1.5)

def capture(first_send, after, name, wait=1.5):
    s = socket.create_connection(('127.0.0.21', 6899))
    s.sendall(first_send)
    got = b''
    end = time.time() + wait
    sent_after = False
    s.settimeout(0.2)
    while time.time() < end:
        try:
            c = s.recv(65536)
            if not c: break
            got += c
        except socket.timeout:
            pass
        if after and not sent_after and len(got) >= 68:
            s.sendall(after); sent_after = True
    s.close()
    open(os.path.join(out, name), 'wb').write(got)
    print(name, len(got), 'bytes')

reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05])
hs = b'\x13BitTorrent protocol' + reserved + ih + b'-JN0001-capture00001'
def ext(eid, payload): return struct.pack('>IBB', len(payload) + 2, 20, eid) + payload
our_ext = ext(0, b'd1:md11:ut_metadatai1eee')
req0 = ext(2, b'd8:msg_typei0e5:piecei0ee')  # libtorrent's ut_metadata id is 2 (checked by the test)
# 1: what libtorrent sends after our handshake (handshake, have-all, extended handshake, ...)
capture(hs, None, 'libtorrent-seed-hello.bin')
# 2: a ut_metadata request for piece 0 and the data reply
capture(hs, our_ext + req0, 'libtorrent-ut-metadata.bin')
ses.pause()
