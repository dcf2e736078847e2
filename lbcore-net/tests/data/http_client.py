#!/usr/bin/env python3
"""Request http://VIP:PORT/ from each source address in turn, COUNT times each, one new TCP
connection per request, and print one line per request: `SOURCE BODY` (the body names the real
server) or `SOURCE ERROR reason`. Used by the lab tests from inside a client namespace.

    http_client.py VIP PORT COUNT SRC [SRC...]
"""
import http.client
import sys


def main() -> int:
    vip, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sources = sys.argv[4:]
    for _ in range(count):
        for src in sources:
            try:
                conn = http.client.HTTPConnection(vip, port, timeout=3, source_address=(src, 0))
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                conn.close()
                if resp.status != 200:
                    print(f"{src} ERROR status {resp.status}", flush=True)
                else:
                    print(f"{src} {body}", flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is a result line
                print(f"{src} ERROR {type(e).__name__}: {e}".replace("\n", " "), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
