"""Speaks to Sluice's TLS front door, or stands in for a PostgreSQL server, the way a careless or hostile
peer would. Prints one line saying what happened. Usage:
    tls_probe.py direct PORT CAFILE            PostgreSQL 17's direct TLS through libpq (psycopg)
    tls_probe.py direct-without-alpn PORT      TLS at once, no ALPN, then a startup packet
    tls_probe.py inject PORT                   SSLRequest with a startup packet behind it, in one write
    tls_probe.py fake-server PORT HEX          accepts one connection, reads SSLRequest, answers HEX bytes
"""
import socket
import ssl
import struct
import sys


def startup_packet(user, database):
    body = struct.pack("!I", 196608)
    for key, value in (("user", user), ("database", database)):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


SSL_REQUEST = struct.pack("!II", 8, 80877103)


def error_fields(data):
    """The severity, SQLSTATE and message of the ErrorResponse at the start of data, or what came instead."""
    if not data:
        return "closed"
    if data[:1] != b"E":
        return "answer %r" % data[:1]
    fields = {}
    for part in data[5:].split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return "%s %s %s" % (fields.get("S"), fields.get("C"), fields.get("M"))


def read_all(sock):
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError, socket.timeout):
        pass
    return data


def direct(port, cafile):
    import psycopg

    conninfo = "host=localhost hostaddr=127.0.0.1 port=%s user=probe dbname=probe sslmode=verify-full " \
        "sslrootcert=%s sslnegotiation=direct connect_timeout=10" % (port, cafile)
    try:
        psycopg.connect(conninfo).close()
        print("connected")
    except psycopg.OperationalError as error:
        # The login itself fails (no such user): what matters is how far TLS got.
        print("error", str(error).strip().splitlines()[-1])


def direct_without_alpn(port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as sock:
            sock.sendall(startup_packet("probe", "probe"))
            print(error_fields(read_all(sock)))


def inject(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(SSL_REQUEST + startup_packet("probe", "probe"))
        print(error_fields(read_all(sock)))


def fake_server(port, answer):
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(8)
        print("listening", flush=True)
        listener.settimeout(60)
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                request = conn.recv(8)
                if request != SSL_REQUEST:
                    print("not an SSLRequest: %r" % request, flush=True)
                    continue
                conn.sendall(answer)
                # Whatever comes next (a startup packet, a TLS hello) is not acted upon here.
                read_all(conn)


def main():
    command, port = sys.argv[1], int(sys.argv[2])
    if command == "direct":
        direct(port, sys.argv[3])
    elif command == "direct-without-alpn":
        direct_without_alpn(port)
    elif command == "inject":
        inject(port)
    elif command == "fake-server":
        fake_server(port, bytes.fromhex(sys.argv[3]))
    else:
        sys.exit(__doc__)


main()
