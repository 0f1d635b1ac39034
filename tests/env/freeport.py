#!/usr/bin/env python3
"""Print N distinct free TCP ports on 127.0.0.1, one per line.

usage: freeport.py [N]     (default 1)

Ports are drawn at random from below the kernel's ephemeral range
(net.ipv4.ip_local_port_range), so an outgoing connection will never be
handed one of them as its local port while a service that owns it is down
for a restart. Each candidate is checked by binding it (all N held at once,
so they are distinct). There is an unavoidable window between this check
and the service binding the port; services started by tests/env/*.sh fail
loudly if they lose that race.
"""
import random
import socket
import sys


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    hi = _ephemeral_low() - 1
    lo = 20000 if hi > 21000 else 1024
    socks: list[socket.socket] = []
    try:
        for _ in range(2000):
            if len(socks) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", random.randint(lo, hi)))
                socks.append(s)
            except OSError:
                s.close()
        while len(socks) < n:  # crowded range: let the kernel choose
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def main() -> int:
    try:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
        if n < 1 or n > 100:
            raise ValueError
    except ValueError:
        print("usage: freeport.py [N]  (1 <= N <= 100)", file=sys.stderr)
        return 2
    for p in free_ports(n):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
