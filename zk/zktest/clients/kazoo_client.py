"""A kazoo (python3-kazoo) ZooKeeper client for rstwatch's tests.

Usage: kazoo_client.py HOST:PORT PATH
Connects, sets an exists watch on PATH, prints "ready", then reads
commands from stdin: "quit" closes the session normally and exits.
"""
import sys

from kazoo.client import KazooClient


def main():
    hosts, path = sys.argv[1], sys.argv[2]
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=30)
    zk.exists(path, watch=lambda event: print("event", event, flush=True))
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    zk.stop()
    zk.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
