"""Running one Dockerfile step inside a build VM through its agent.

RUN is an agent exec; COPY and ADD stream a tar built on the host (names,
modes and owners set here, never taken from the guest) into ``tar -x`` in the
guest. Users and groups are resolved from the image's own /etc/passwd and
/etc/group, as Docker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import posixpath
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ember.errors import AgentOpError, EmberError
from ember.host.agent_client import AgentClient, Process

from .dockerfile import CopyStep, RunStep, is_local_archive

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Lines of output kept for a failed step's stateReason.
LOG_TAIL_LINES = 20
TAR_CHUNK_BYTES = 1 << 20

LogFn = Callable[[str, str], None]  # (stream, line)


class StepFailed(EmberError):
    """A Dockerfile step failed; the message is the version's stateReason."""

    def __init__(self, line: int, instruction: str, reason: str, tail: list[str] | None = None) -> None:
        text = f"line {line}: {instruction} failed: {reason}"
        if tail:
            text += "\n" + "\n".join(tail[-LOG_TAIL_LINES:])
        super().__init__(text)
        self.line = line
        self.reason = reason


async def read_text(agent: AgentClient, path: str) -> str:
    try:
        return (await agent.get_file(path)).decode(errors="replace")
    except AgentOpError:
        return ""


async def resolve_user(agent: AgentClient, spec: str) -> tuple[int, int, str]:
    """``user[:group]`` (names or numbers) → (uid, gid, home), from the image's passwd and group files."""
    user, _, group = (spec or "root").partition(":")
    passwd = [line.split(":") for line in (await read_text(agent, "/etc/passwd")).splitlines() if line.count(":") >= 6]
    uid = gid = -1
    home = "/"
    for entry in passwd:
        if entry[0] == user or (user.isdigit() and entry[2] == user):
            uid, gid, home = int(entry[2]), int(entry[3]), entry[5] or "/"
            break
    else:
        if not user.isdigit():
            raise EmberError(f"user {user!r} does not exist in the image's /etc/passwd")
        uid, gid = int(user), int(user)
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = [line.split(":") for line in (await read_text(agent, "/etc/group")).splitlines()]
            match = [g for g in groups if len(g) >= 3 and g[0] == group]
            if not match:
                raise EmberError(f"group {group!r} does not exist in the image's /etc/group")
            gid = int(match[0][2])
    return uid, gid, home


async def run_step(agent: AgentClient, step: RunStep, log: LogFn, extra_env: dict[str, str]) -> None:
    """Run a RUN step; StepFailed with its exit code and output tail when it fails."""
    try:
        uid, gid, home = await resolve_user(agent, step.user)
    except EmberError as exc:
        raise StepFailed(step.line, "RUN", str(exc)) from None
    env = {"PATH": DEFAULT_PATH, "HOME": home, **dict(step.env), **extra_env}
    await _mkdir(agent, step.workdir)
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    try:
        proc = await agent.spawn(list(step.argv), env=env, cwd=step.workdir, uid=uid, gid=gid)
    except AgentOpError as exc:
        raise StepFailed(step.line, "RUN", f"cannot start {step.argv[0]!r}: {exc.code}") from None
    pending = {1: b"", 2: b""}
    async for fd, data in proc.events():
        buf = pending.get(fd, b"") + data
        *lines, pending[fd] = buf.split(b"\n")
        for raw in lines:
            text = raw.decode(errors="replace")
            tail.append(text)
            log("stdout" if fd == 1 else "stderr", text)
    for fd, rest in pending.items():
        if rest:
            tail.append(rest.decode(errors="replace"))
            log("stdout" if fd == 1 else "stderr", rest.decode(errors="replace"))
    if proc.exit_code != 0:
        how = f"exit code {proc.exit_code}" if proc.exit_code is not None else f"killed by signal {proc.signal}"
        raise StepFailed(step.line, "RUN", f"{' '.join(step.argv)[:200]} returned {how}", list(tail))


async def _mkdir(agent: AgentClient, path: str) -> None:
    res = await agent.exec(["mkdir", "-p", path])
    if res.exit_code != 0:
        raise EmberError(f"cannot create {path}: {res.stderr.decode(errors='replace').strip()}")


async def _is_dir(agent: AgentClient, path: str) -> bool:
    return (await agent.exec(["test", "-d", path])).exit_code == 0


async def _stream_tar(agent: AgentClient, tar_path: Path, dest_root: str, step: CopyStep) -> None:
    """Unpack the host-built tar at ``dest_root`` in the guest, keeping the owners and modes it names."""
    proc = await agent.spawn(["tar", "-x", "-p", "--numeric-owner", "-f", "-", "-C", dest_root], stdin=True)
    err = bytearray()

    async def feed() -> None:
        with open(tar_path, "rb") as f:
            while chunk := f.read(TAR_CHUNK_BYTES):
                await proc.write(chunk)
        await proc.close_stdin()

    feeder = asyncio.create_task(feed())
    async for fd, data in proc.events():
        if fd == 2 and len(err) < 4096:
            err += data
    with contextlib.suppress(Exception):
        await feeder
    if proc.exit_code != 0:
        raise StepFailed(step.line, step.instruction, f"unpacking into {dest_root} failed: "
                         f"{err.decode(errors='replace').strip()[:500]}")


def _add_path(tar: tarfile.TarFile, src: Path, arcname: str, uid: int, gid: int, chmod: int | None) -> None:
    """Add ``src`` (file, link or directory tree) under ``arcname`` with the given owner and mode."""

    def fix(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        if chmod is not None and not info.issym():
            info.mode = chmod
        return info

    tar.add(str(src), arcname=arcname, recursive=True, filter=fix)


def _add_archive(tar: tarfile.TarFile, archive: Path, dest: str, step: CopyStep) -> None:
    """ADD of a local archive: copy its members under ``dest``, refusing names that escape it."""
    with tarfile.open(archive, "r:*") as src:
        for member in src:
            name = posixpath.normpath(member.name.lstrip("/"))
            if name.startswith("..") or member.isdev():
                raise StepFailed(step.line, "ADD", f"archive {archive.name} has an unsafe entry {member.name!r}")
            if member.islnk():
                member.linkname = posixpath.join(dest.lstrip("/"), member.linkname.lstrip("/"))
            member.name = posixpath.join(dest.lstrip("/"), name)
            data = src.extractfile(member) if member.isfile() else None
            tar.addfile(member, data)


async def copy_from_context(agent: AgentClient, step: CopyStep, context: Path) -> None:
    """COPY/ADD from the build context."""
    uid, gid = 0, 0
    if step.chown:
        try:
            uid, gid, _ = await resolve_user(agent, step.chown)
        except EmberError as exc:
            raise StepFailed(step.line, step.instruction, str(exc)) from None
    sources: list[Path] = []
    root = context.resolve()
    for pattern in step.sources:
        matches = sorted(glob.glob(str(root / pattern))) if any(c in pattern for c in "*?[") else [str(root / pattern)]
        for m in matches:
            p = Path(os.path.normpath(m))
            if p != root and root not in p.parents:
                raise StepFailed(step.line, step.instruction, f"source {pattern!r} is outside the artifact")
            sources.append(p)
    if not sources:
        raise StepFailed(step.line, step.instruction, f"no source matches {', '.join(step.sources)}")
    dest_is_dir = step.dest_is_dir or len(sources) > 1 or await _is_dir(agent, step.dest)
    with tempfile.TemporaryDirectory(prefix="ember-copy-") as tmp:
        tar_path = Path(tmp) / "copy.tar"
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for src in sources:
                if step.extract_archives and is_local_archive(src):
                    _add_archive(tar, src, step.dest, step)
                elif src.is_dir():
                    for child in sorted(src.iterdir()):
                        _add_path(tar, child, posixpath.join(step.dest, child.name).lstrip("/"), uid, gid,
                                  step.chmod)
                elif dest_is_dir:
                    _add_path(tar, src, posixpath.join(step.dest, src.name).lstrip("/"), uid, gid, step.chmod)
                else:
                    _add_path(tar, src, step.dest.lstrip("/"), uid, gid, step.chmod)
        await _mkdir(agent, step.dest if dest_is_dir else posixpath.dirname(step.dest) or "/")
        await _stream_tar(agent, tar_path, "/", step)


async def copy_from_stage(src_agent: AgentClient, agent: AgentClient, step: CopyStep) -> None:
    """COPY --from=<stage>: stream a tar out of the stage's VM into this one."""
    dest_is_dir = step.dest_is_dir or len(step.sources) > 1 or await _is_dir(agent, step.dest)
    for source in step.sources:
        src = posixpath.normpath("/" + source)
        if any(c in src for c in "*?["):
            raise StepFailed(step.line, step.instruction, "wildcards are not supported with --from")
        src_is_dir = await _is_dir(src_agent, src)
        if src_is_dir:
            pack = ["tar", "-c", "-f", "-", "-C", src, "."]
            target = step.dest
        else:
            pack = ["tar", "-c", "-f", "-", "-C", posixpath.dirname(src) or "/", posixpath.basename(src)]
            target = step.dest if dest_is_dir else posixpath.dirname(step.dest) or "/"
        await _mkdir(agent, target)
        producer = await src_agent.spawn(pack)
        consumer = await agent.spawn(["tar", "-x", "-p", "--numeric-owner", "-f", "-", "-C", target], stdin=True)
        err = bytearray()
        pumping = asyncio.create_task(_pump(producer, consumer, err))
        async for fd, data in consumer.events():
            if fd == 2 and len(err) < 4096:
                err += data
        await pumping
        if producer.exit_code != 0 or consumer.exit_code != 0:
            raise StepFailed(step.line, step.instruction, f"copying {src} from stage failed: "
                             f"{err.decode(errors='replace').strip()[:500]}")
        if not src_is_dir and not dest_is_dir and posixpath.basename(src) != posixpath.basename(step.dest):
            await agent.exec(["mv", "-f", posixpath.join(target, posixpath.basename(src)), step.dest])
        if step.chown:
            uid, gid, _ = await resolve_user(agent, step.chown)
            await agent.exec(["chown", "-R", f"{uid}:{gid}", step.dest])


async def _pump(producer: Process, consumer: Process, err: bytearray) -> None:
    """Producer's stdout into consumer's stdin (credit-limited both ways); its stderr into ``err``."""
    async for fd, data in producer.events():
        if fd == 1:
            await consumer.write(data)
        elif len(err) < 4096:
            err.extend(data)
    await consumer.close_stdin()
