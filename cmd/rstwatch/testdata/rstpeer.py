#!/usr/bin/env python3
"""A test peer for rstwatch's sender tests: one process with a name of its
own (argv[1], set as its comm) that takes one command per line on stdin and
answers one line, so that a test can tell owners, tasks and senders apart.

Commands:
  pid                          -> "ok PID"
  listen ADDR [PORT]           -> "ok PORT"      (ADDR: an IPv4 or IPv6 address)
  accept                       -> "ok"
  connect ADDR PORT            -> "ok LOCALPORT" or "refused"
  send N                       -> "ok"           (N bytes on the connection)
  linger0                      -> "ok"           (SO_LINGER {1, 0})
  close                        -> "ok"
  waitreset                    -> "reset" once the connection is reset, "eof"/"timeout" otherwise
  forge MODE SRC SPORT DST DPORT
                               -> "ok"  after sending one RST from SRC:SPORT to
                                  DST:DPORT with the sequence number DST expects,
                                  learnt by sniffing lo for a segment DST sends
                                  (as tcpkill does). MODE: "raw" (an IPv4 raw
                                  socket, IPPROTO_RAW) or "packet" (an AF_PACKET
                                  socket writing the whole frame on lo).
"""
import ctypes
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def setname(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def rst_packet(src, sport, dst, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x04, 0, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x4242, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def sniff_ack(sniffer, src, sport, dst, dport, deadline):
    """The ACK number of a segment DST:DPORT sends to SRC:SPORT: what DST
    expects next from SRC."""
    want_src, want_dst = socket.inet_aton(dst), socket.inet_aton(src)
    while time.time() < deadline:
        r, _, _ = select.select([sniffer], [], [], 0.2)
        if not r:
            continue
        frame = sniffer.recv(65535)
        if len(frame) < 14 + 40 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or ip[12:16] != want_src or ip[16:20] != want_dst:
            continue
        p_sport, p_dport, _seq, ack = struct.unpack("!HHII", ip[ihl:ihl + 12])
        flags = ip[ihl + 13]
        if p_sport == dport and p_dport == sport and flags & 0x10:
            return ack
    return None


def main():
    setname(sys.argv[1])
    ln = conn = sniffer = None
    for line in sys.stdin:
        f = line.split()
        if not f:
            continue
        cmd, out = f[0], "ok"
        try:
            if cmd == "pid":
                out = "ok %d" % os.getpid()
            elif cmd == "listen":
                fam = socket.AF_INET6 if ":" in f[1] else socket.AF_INET
                ln = socket.socket(fam, socket.SOCK_STREAM)
                ln.bind((f[1], int(f[2]) if len(f) > 2 else 0))
                ln.listen(16)
                out = "ok %d" % ln.getsockname()[1]
            elif cmd == "accept":
                conn, _ = ln.accept()
            elif cmd == "connect":
                fam = socket.AF_INET6 if ":" in f[1] else socket.AF_INET
                conn = socket.socket(fam, socket.SOCK_STREAM)
                conn.settimeout(3)
                try:
                    conn.connect((f[1], int(f[2])))
                    out = "ok %d" % conn.getsockname()[1]
                except ConnectionRefusedError:
                    out = "refused"
            elif cmd == "send":
                conn.sendall(b"x" * int(f[1]))
            elif cmd == "linger0":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif cmd == "close":
                conn.close()
            elif cmd == "waitreset":
                conn.settimeout(3)
                try:
                    out = "eof" if conn.recv(1) == b"" else "data"
                except ConnectionResetError:
                    out = "reset"
                except socket.timeout:
                    out = "timeout"
            elif cmd == "sniff":
                # Open the sniffer before the segment it must see is sent.
                sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sniffer.bind(("lo", 0))
            elif cmd == "forge":
                mode, src, sport, dst, dport = f[1], f[2], int(f[3]), f[4], int(f[5])
                ack = sniff_ack(sniffer, src, sport, dst, dport, time.time() + 3)
                if ack is None:
                    out = "nosegment"
                else:
                    pkt = rst_packet(src, sport, dst, dport, ack)
                    if mode == "raw":
                        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                        s.sendto(pkt, (dst, 0))
                    else:
                        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
                        s.bind(("lo", 0))
                        s.send(b"\0" * 12 + struct.pack("!H", ETH_P_IP) + pkt)
                    s.close()
            else:
                out = "unknown command " + cmd
        except Exception as e:  # the test reads the failure from the answer
            out = "error %s" % e
        print(out, flush=True)


if __name__ == "__main__":
    main()
