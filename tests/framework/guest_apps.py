"""Small programs the VM tests run inside guests."""

# Port 7000 echoes (half-close aware); port 7001 answers "pid counter token" and counts
# connections, so a test can tell whether the same process, with the same memory, survived.
ECHO_AND_COUNTER_APP = r'''
import asyncio, os, random

counter = 0
token = random.getrandbits(64)

async def echo(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()

async def info(reader, writer):
    global counter
    counter += 1
    writer.write(f"{os.getpid()} {counter} {token}\n".encode())
    await writer.drain()
    writer.close()

async def main():
    await asyncio.start_server(echo, "127.0.0.1", 7000)
    await asyncio.start_server(info, "127.0.0.1", 7001)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''

# A stdlib app for data-plane tests: SSE, streamed upload and download, and a WebSocket echo.
STREAMING_APP = r'''
import base64, hashlib, json, struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 16

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(100):
                data = f"data: {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/download/"):
            n = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = hashlib.sha256(b"ember").digest() * (CHUNK // 32)
            sent = 0
            while sent < n:
                part = block[: min(CHUNK, n - sent)]
                self.wfile.write(part)
                sent += len(part)
        elif self.path == "/ws":
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                      .digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                opcode, n = head[0] & 0x0F, head[1] & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self.rfile.read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self.rfile.read(8))[0]
                mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
                if opcode == 8:
                    self.wfile.write(b"\x88\x00")
                    return
                header = bytes([0x80 | opcode])
                header += bytes([len(payload)]) if len(payload) < 126 else b"\x7e" + struct.pack(">H", len(payload))
                self.wfile.write(header + payload)
                self.wfile.flush()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        digest, got = hashlib.sha256(), 0
        while got < n:
            part = self.rfile.read(min(CHUNK, n - got))
            if not part:
                break
            digest.update(part)
            got += len(part)
        body = json.dumps({"size": got, "sha256": digest.hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
'''
