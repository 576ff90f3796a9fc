"""Group chat on replicated collections: per room, a Map of users and a Vec of messages.

Every participant is a writer of both collections, so a room lives as long as any of its
participants runs, and one that joins late receives the room's history. Start the host
first (it listens on a fixed address with a well-known demo key), then the others, one
terminal each:

    .venv/bin/python examples/group_chat.py alice --host
    .venv/bin/python examples/group_chat.py bob
    .venv/bin/python examples/group_chat.py carol --room lobby

Type a line to post it; ``/who`` lists the room's users; ``/quit`` (or Ctrl-D) leaves.

    .venv/bin/python examples/group_chat.py demo [--messages 5]

runs three participants as processes that each post ``--messages`` lines and exit 0 once
every participant saw every message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node import MosaikError, Network, SecretKey
from node.collections import MapWriter, VecWriter

NETWORK = "mosaik-group-chat"
HOST_BIND = "127.0.0.1:7610"
# The demo host's key is public on purpose: guests derive its peer id to find it.
HOST_KEY = SecretKey.from_seed(b"mosaik-py group chat demo host!!")
HOST = f"{HOST_KEY.peer_id}@{HOST_BIND}"


class User(msgspec.Struct, frozen=True):
    peer: str
    joined_ms: int


class Message(msgspec.Struct, frozen=True):
    author: str
    text: str
    sent_ms: int


class Room:
    """One room's collections on this node: who is here, and what was said."""

    def __init__(self, net: Network, name: str) -> None:
        self.users: MapWriter[str, User] = net.collections.map(
            f"group-chat/{name}/users", key=str, value=User
        )
        self.messages: VecWriter[Message] = net.collections.vec(
            f"group-chat/{name}/messages", item=Message
        )

    async def online(self) -> None:
        await asyncio.gather(self.users.when.online(), self.messages.when.online())

    async def say(self, author: str, text: str) -> None:
        await self.messages.push_back(Message(author, text, int(time.time() * 1000)))


async def show(room: Room, me: str) -> None:
    """Print the room's messages as the local replica receives them, history first."""
    shown = 0
    while True:
        messages = room.messages.to_list()
        for message in messages[shown:]:
            mark = ">" if message.author == me else " "
            print(f"{mark} [{message.author}] {message.text}", flush=True)
        shown = len(messages)
        await room.messages.when.updated()


async def lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def chat(
    me: str, room_name: str, *, host: bool, bootstrap: str, say: int, expect: int
) -> int:
    if host:
        starting = Network.create(NETWORK, secret_key=HOST_KEY, bind=HOST_BIND)
    else:
        starting = Network.create(NETWORK, bootstrap=[bootstrap])
    async with starting as net:
        room = Room(net, room_name)
        print(f"{me}: joining room {room_name!r} as {net.peer_id.short()}", flush=True)
        await room.online()
        await room.users.insert(me, User(net.peer_id.hex(), int(time.time() * 1000)))
        if say or expect:  # scripted (the demo): post, wait to see everything, leave
            for i in range(say):
                await room.say(me, f"hello #{i} from {me}")
            while len(room.messages) < expect:
                await room.messages.when.updated()
            print(f"{me}: saw {len(room.messages)} messages from {len(room.users)} users")
            await room.users.remove(me)
            while len(room.users):  # stay until everyone is done: the room needs a quorum
                await room.users.when.updated()
            return 0
        printer = asyncio.create_task(show(room, me))
        stdin = await lines()
        while (raw := await stdin.readline()) and (text := raw.decode().strip()) != "/quit":
            if text == "/who":
                print("  here: " + ", ".join(room.users.keys()), flush=True)
            elif text:
                await room.say(me, text)
        printer.cancel()
        try:
            await room.users.remove(me)
        except MosaikError as exc:  # e.g. the room lost its quorum meanwhile
            print(f"{me}: left without saying goodbye: {exc}", flush=True)
    return 0


def demo(messages: int) -> int:
    """Three participants as processes; 0 if each saw all 3 * ``messages`` messages."""
    script = [sys.executable, "-u", str(Path(__file__).resolve())]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    total = 3 * messages
    common = ["--say", str(messages), "--expect", str(total), "--room", f"demo-{os.getpid()}"]
    processes = [subprocess.Popen([*script, "alice", "--host", *common], env=env)]
    time.sleep(0.5)  # let the host bind its well-known address first
    for name in ("bob", "carol"):
        processes.append(subprocess.Popen([*script, name, *common], env=env))
    try:
        codes = [p.wait(timeout=120) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    print(f"exit codes {codes}")
    return 0 if codes == [0, 0, 0] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="your name in the room, or 'demo'")
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--host", action="store_true", help=f"listen on {HOST_BIND}")
    parser.add_argument("--bootstrap", default=HOST, help="<peer-id>@host:port of any node")
    parser.add_argument("--messages", type=int, default=5, help="demo: lines per participant")
    parser.add_argument("--say", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.name == "demo":
        return demo(args.messages)
    return asyncio.run(
        chat(
            args.name,
            args.room,
            host=args.host,
            bootstrap=args.bootstrap,
            say=args.say,
            expect=args.expect,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
