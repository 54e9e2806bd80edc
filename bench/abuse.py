#!/usr/bin/env python3
"""Attack clients for bench/abuse.sh, standard library only, loopback only, each bounded in time.

  abuse.py slow-gzip  PORT CONNECTIONS SECONDS   HTTP/1.1 gzip bodies inflating to ~3.9 MiB, never finished
  abuse.py h2-streams PORT STREAMS SECONDS       the same bodies on HTTP/2 streams of one cleartext connection
  abuse.py poison     PORT RATE SECONDS INSTANCE  GenericReports of INSTANCE (which the bench database refuses)
  abuse.py legit      PORT SECONDS                one ordinary report every 0.2 s; prints the statuses seen

Each prints one result line of NAME=VALUE fields.
"""
import gzip
import http.client
import json
import socket
import struct
import sys
import time
import uuid
from collections import Counter

INFLATED = 3_900_000
PATH = b"/v1/telemetry/GenericReport"


def unfinished_gzip_body():
    """A gzip body inflating to INFLATED bytes of JSON that never ends, without its 8-byte trailer."""
    body = gzip.compress(b'{"reports":[' + b" " * (INFLATED - 12), compresslevel=9)
    return body[:-8], len(body)


def slow_gzip(port, connections, seconds):
    body, full_length = unfinished_gzip_body()
    head = (
        b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: " + str(full_length).encode() + b"\r\n\r\n"
    )
    sockets = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head + body)
        sockets.append(s)
    sent = connections * (len(head) + len(body))
    time.sleep(seconds)
    answers = Counter()
    for s in sockets:
        s.setblocking(False)
        try:
            data = s.recv(64)
            answers[data[9:12].decode() if data.startswith(b"HTTP/1.1") else "closed"] += 1
        except BlockingIOError:
            answers["pending"] += 1
        except OSError:
            answers["closed"] += 1
        s.close()
    print(f"slow-gzip connections={connections} bytes_sent={sent} answers={dict(answers)}")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(index, value):
    """HPACK literal header field without indexing, name from the static table (index < 15)."""
    return bytes([index]) + bytes([len(value)]) + value


def h2_streams(port, streams, seconds):
    body, _ = unfinished_gzip_body()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    s.settimeout(0.5)
    buffered = b""
    deadline = time.time() + 0.5
    while time.time() < deadline:  # the server's SETTINGS and window updates
        try:
            buffered += s.recv(65536)
        except socket.timeout:
            break
    s.sendall(frame(4, 1, 0))  # SETTINGS ACK
    # :method POST, :scheme http, :path, :authority, content-type, content-encoding (static names)
    block = (
        bytes([0x83, 0x86]) + literal(0x04, PATH) + literal(0x01, b"x")
        + bytes([0x0F, 0x10]) + bytes([len(b"application/json")]) + b"application/json"
        + bytes([0x0F, 0x0B]) + bytes([len(b"gzip")]) + b"gzip"
    )
    for n in range(streams):
        stream = 2 * n + 1
        s.sendall(frame(1, 0x04, stream, block) + frame(0, 0, stream, body))
    sent = streams * (len(block) + len(body) + 18)
    # Stay connected, answering pings as a live client does, until the time is up.
    refused = 0
    end = time.time() + seconds
    s.settimeout(0.2)
    while time.time() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        buffered += data
        while len(buffered) >= 9:
            length = int.from_bytes(buffered[:3], "big")
            if len(buffered) < 9 + length:
                break
            kind, flags = buffered[3], buffered[4]
            payload = buffered[9 : 9 + length]
            buffered = buffered[9 + length :]
            if kind == 6 and not flags & 1:
                s.sendall(frame(6, 1, 0, payload))
            elif kind == 3:
                refused += 1
    s.close()
    print(f"h2-streams streams={streams} bytes_sent={sent} rst_stream_frames={refused}")


def report(instance):
    return json.dumps({"reports": [{
        "id": str(uuid.uuid4()), "createTime": "2025-01-01T00:00:00Z", "instanceId": instance,
        "productFamily": "PRODUCT_FAMILY_PS", "metrics": [{"key": "pillar_version", "value": "8.0.36-28"}],
    }]})


def paced(port, rate, seconds, instance):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = Counter()
    start = time.time()
    sent = 0
    while time.time() - start < seconds:
        connection.request("POST", PATH.decode(), report(instance or str(uuid.uuid4())),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses[response.status] += 1
        sent += 1
        pause = start + sent / rate - time.time()
        if pause > 0:
            time.sleep(pause)
    return statuses


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "slow-gzip":
        slow_gzip(port, int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "h2-streams":
        h2_streams(port, int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "poison":
        statuses = paced(port, float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        print(f"poison sent={sum(statuses.values())} statuses={dict(statuses)}")
    elif mode == "legit":
        statuses = paced(port, 5, float(sys.argv[3]), None)
        print(f"legit sent={sum(statuses.values())} ok={statuses[200]} statuses={dict(statuses)}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
