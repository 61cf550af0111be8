#!/usr/bin/python3
"""A user-space link for the fault bed (tests/interop/faults.sh): the kernel here has no
netem, so frames between two veth ends are relayed through AF_PACKET raw sockets, delayed,
dropped at random, or all dropped (a partition).

  netbridge.py run IF_A IF_B CTL_FILE
      Relays every frame arriving on IF_A out of IF_B and the other way, each direction
      through its own FIFO: a frame leaves delay_ms after it arrived, unless it is lost
      (probability `loss`) or the link is down. CTL_FILE holds one line such as
      `delay_ms=100 loss=0.05 down=0` and is re-read whenever it changes (write it with
      a rename); going down also drops the frames in flight. Each queue holds at most
      MAX_QUEUE frames (more are dropped as `overflow`). Counters go to CTL_FILE.stats
      (JSON, every second) and to stderr on exit (SIGTERM or SIGINT).
  netbridge.py offload-off IFACE...
      Turns off TX checksum offload, scatter-gather, TSO, GSO and GRO on IFACE (the ethtool
      ioctl, as `ethtool -K IFACE tx off sg off tso off gso off gro off` would; ethtool
      itself may be absent). Run it in the namespace that owns IFACE: with TX checksum
      offload a veth hands over frames whose TCP/UDP checksum is not filled in yet, which
      the far side rejects once a raw socket has copied them; with segmentation offload
      it hands over frames larger than the MTU.
"""
import collections, ctypes, errno, fcntl, json, os, random, select, signal, socket, struct, sys, time

ETH_P_ALL = 3
PACKET_OUTGOING = 4
MAX_QUEUE = 20000          # frames per direction
MAX_FRAME = 65536
SIOCETHTOOL = 0x8946
# ethtool commands (linux/ethtool.h): set TX csum, SG, TSO, GSO, GRO; get TX csum.
ETHTOOL_STXCSUM, ETHTOOL_SSG, ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO = 0x17, 0x19, 0x1f, 0x24, 0x2c
ETHTOOL_GTXCSUM = 0x16


def ethtool(ifname, cmd, value=0):
    ev = ctypes.create_string_buffer(struct.pack('II', cmd, value))
    ifr = struct.pack('16sP', ifname.encode(), ctypes.addressof(ev)).ljust(40, b'\0')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack('II', ev.raw[:8])[1]


def offload_off(ifaces):
    for ifn in ifaces:
        for cmd in (ETHTOOL_STXCSUM, ETHTOOL_SSG, ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO):
            try:
                ethtool(ifn, cmd, 0)
            except OSError as e:
                # TSO/GSO/GRO may be refused on some drivers; TX checksum is the one that matters.
                if cmd == ETHTOOL_STXCSUM:
                    raise
                print('netbridge: %s: ethtool cmd %#x: %s' % (ifn, cmd, e), file=sys.stderr)
        if ethtool(ifn, ETHTOOL_GTXCSUM) != 0:
            sys.exit('netbridge: %s: TX checksum offload is still on' % ifn)
        print('netbridge: %s: tx checksum, sg, tso, gso, gro off' % ifn)


def read_ctl(path, cur):
    try:
        text = open(path).read()
    except OSError:
        return cur
    new = dict(cur)
    for kv in text.split():
        k, _, v = kv.partition('=')
        if k == 'delay_ms':
            new['delay'] = float(v) / 1000.0
        elif k == 'loss':
            new['loss'] = float(v)
        elif k == 'down':
            new['down'] = v not in ('0', '')
    return new


def run(if_a, if_b, ctl):
    socks = {}
    for ifn in (if_a, if_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.bind((ifn, ETH_P_ALL))
        s.setblocking(False)
        socks[ifn] = s
    # per direction: the socket frames go out of, the FIFO of (due, frame), counters
    dirs = {
        if_a: {'out': socks[if_b], 'q': collections.deque(), 'name': '%s>%s' % (if_a, if_b)},
        if_b: {'out': socks[if_a], 'q': collections.deque(), 'name': '%s>%s' % (if_b, if_a)},
    }
    for d in dirs.values():
        d['st'] = dict(frames=0, bytes=0, sent=0, lost=0, down=0, overflow=0, oversize=0,
                       send_err=0, max_frame=0)
    by_fd = {socks[i].fileno(): i for i in socks}
    seed = int(os.environ.get('NETBRIDGE_SEED', str(int(time.time() * 1000) & 0xffffffff)))
    rng = random.Random(seed)
    conf = read_ctl(ctl, {'delay': 0.0, 'loss': 0.0, 'down': False})
    ctl_mtime = None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    mtu = {}
    for ifn in socks:
        try:
            mtu[ifn] = int(open('/sys/class/net/%s/mtu' % ifn).read())
        except OSError:
            mtu[ifn] = 1500
    print('netbridge: %s <-> %s seed %d %s' % (if_a, if_b, seed, conf), file=sys.stderr, flush=True)
    next_ctl = next_stats = 0.0

    def write_stats():
        out = {'conf': conf, 'queued': {d['name']: len(d['q']) for d in dirs.values()},
               'dirs': {d['name']: d['st'] for d in dirs.values()}}
        tmp = ctl + '.stats.tmp'
        with open(tmp, 'w') as f:
            json.dump(out, f)
        os.replace(tmp, ctl + '.stats')

    while not stop:
        now = time.monotonic()
        if now >= next_ctl:
            next_ctl = now + 0.1
            try:
                m = os.stat(ctl).st_mtime_ns
            except OSError:
                m = None
            if m != ctl_mtime:
                ctl_mtime = m
                new = read_ctl(ctl, conf)
                if new != conf:
                    print('netbridge: %.3f %s' % (time.time(), new), file=sys.stderr, flush=True)
                    if new['down'] and not conf['down']:
                        for d in dirs.values():
                            d['st']['down'] += len(d['q'])
                            d['q'].clear()
                    conf = new
        if now >= next_stats:
            next_stats = now + 1.0
            write_stats()
        due = [d['q'][0][0] for d in dirs.values() if d['q']]
        timeout = max(0.0, min(due + [now + 0.1]) - now)
        try:
            readable, _, _ = select.select(list(by_fd), [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            ifn = by_fd[fd]
            d = dirs[ifn]
            st = d['st']
            for _ in range(512):
                try:
                    frame, addr = socks[ifn].recvfrom(MAX_FRAME)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own sends on this interface, or the host's
                st['frames'] += 1
                st['bytes'] += len(frame)
                st['max_frame'] = max(st['max_frame'], len(frame))
                if conf['down']:
                    st['down'] += 1
                elif conf['loss'] > 0 and rng.random() < conf['loss']:
                    st['lost'] += 1
                elif len(d['q']) >= MAX_QUEUE:
                    st['overflow'] += 1
                else:
                    d['q'].append((now + conf['delay'], frame))
        now = time.monotonic()
        for d in dirs.values():
            q, st, out = d['q'], d['st'], d['out']
            while q and q[0][0] <= now:
                _, frame = q.popleft()
                try:
                    out.send(frame)
                    st['sent'] += 1
                except BlockingIOError:
                    st['send_err'] += 1
                except OSError as e:
                    if e.errno == errno.EMSGSIZE:
                        st['oversize'] += 1
                    else:
                        st['send_err'] += 1
    write_stats()
    for d in dirs.values():
        print('netbridge: %s %s' % (d['name'], json.dumps(d['st'])), file=sys.stderr, flush=True)
    for s in socks.values():
        s.close()


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == 'offload-off':
        offload_off(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == 'run':
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
