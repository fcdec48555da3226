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
