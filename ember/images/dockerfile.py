"""Dockerfiles: parse one into a typed ``BuildPlan`` and resolve ``FROM`` references to base images.

``plan_dockerfile`` turns the text (split into instructions by PyPI ``dockerfile-parse``) into stages of
ordered steps plus each stage's image config, the way Docker's builder would: variables are substituted
where Docker substitutes them (not in ``RUN``/``CMD``/``ENTRYPOINT``, which the shell expands), ``ARG``
scopes follow Docker's rules, shell forms become argv through the current ``SHELL``, destinations are
resolved against ``WORKDIR``. Every refusal is a ``DockerfileError`` naming the line and what is allowed.

``resolve_base`` maps a ``FROM`` reference to a managed base (``MANAGED_BASES``, the one list of them), an
earlier stage, ``scratch`` or an OCI reference for the builder to pull.

Planning is pure: no VM, no network, no file read. ``check_sources`` and ``is_local_archive`` read the
unpacked context when the builder asks. Running the plan is the builder's job.

Decisions: ``ADD`` of a URL is refused (download in a ``RUN`` step or ship the file in the artifact);
``MAINTAINER`` (deprecated) becomes the label ``maintainer``; ``HEALTHCHECK``, ``VOLUME``, ``ONBUILD``,
heredocs and ``RUN --mount``-style flags are refused; ``COPY --link`` is accepted and means plain ``COPY``.
A value that starts like a JSON exec form but is not valid JSON is refused (Docker would silently run it
as a shell command).
"""

from __future__ import annotations

import io
import json
import platform as _platform
import posixpath
import re
import signal
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from dockerfile_parse import DockerfileParser

from ember import errors

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "MANAGED_BASES",
    "SUPPORTED_INSTRUCTIONS",
    "ArgStep",
    "BaseKind",
    "BaseRef",
    "BuildPlan",
    "CmdStep",
    "CopyStep",
    "DockerfileError",
    "EntrypointStep",
    "EnvStep",
    "ExposeStep",
    "ImageConfig",
    "LabelStep",
    "ManagedBase",
    "RunStep",
    "ShellStep",
    "Stage",
    "Step",
    "StopSignalStep",
    "UserStep",
    "WorkdirStep",
    "check_sources",
    "is_local_archive",
    "plan_dockerfile",
    "resolve_base",
]

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUPPORTED_INSTRUCTIONS = (
    "FROM", "ARG", "RUN", "COPY", "ADD", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL",
    "SHELL", "CMD", "ENTRYPOINT", "STOPSIGNAL", "MAINTAINER",
)  # fmt: skip
_REFUSED_WHY = {
    "HEALTHCHECK": "Ember checks readiness through the ready hook or the app's port",
    "VOLUME": "a MicroVM has one disk and everything written to it is kept",
    "ONBUILD": "images are not used as bases of other builds",
}
# BuildKit passes these build args to RUN without an ARG line.
_PROXY_ARGS = frozenset(
    n for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY") for n in (base, base.lower())
)
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
_HEREDOC = re.compile(r"(?<!<)<<-?\s*[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?")
_URL = re.compile(r"^(?:https?|git|ssh)://|^git@", re.IGNORECASE)
_OCI_REF = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::\d+)?/)?"  # registry, or a first path component
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # repository
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # tag
    r"(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"  # digest
)
_HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "registry-1.docker.io/library/", "library/")


class DockerfileError(errors.InvalidInput):
    """The Dockerfile cannot be planned; the message starts with the line number when there is one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__("Dockerfile", f"line {line}: {message}" if line else message)
        self.line = line
        self.detail = message


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ImageConfig:
    """What an image carries besides its files; also the state a step runs in (env, workdir, user, shell)."""

    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    shell: tuple[str, ...] = DEFAULT_SHELL
    entrypoint: tuple[str, ...] | None = None
    entrypoint_shell_form: bool = False
    cmd: tuple[str, ...] | None = None
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp", "9000-9010/udp"
    labels: Mapping[str, str] = field(default_factory=dict)
    stopsignal: str | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        """The process the image starts, as Docker computes it: exec ENTRYPOINT + CMD; a shell-form
        ENTRYPOINT ignores CMD; no ENTRYPOINT runs CMD. Empty when there is neither."""
        if self.entrypoint:
            return self.entrypoint if self.entrypoint_shell_form else self.entrypoint + (self.cmd or ())
        return self.cmd or ()

    def tcp_ports(self) -> tuple[int, ...]:
        """Single TCP ports from EXPOSE, in order (ranges and UDP/SCTP left out)."""
        ports = (p.split("/")[0] for p in self.exposed_ports if p.endswith("/tcp"))
        return tuple(int(p) for p in ports if p.isdigit())


class BaseKind(StrEnum):
    """What a ``FROM`` names."""

    MANAGED = "managed"  # one of MANAGED_BASES, built locally
    STAGE = "stage"  # an earlier stage of the same Dockerfile
    OCI = "oci"  # an image to pull from a registry (skopeo)
    SCRATCH = "scratch"  # the empty image


@dataclass(frozen=True)
class BaseRef:
    """A resolved ``FROM``: ``name`` is the managed base's name, the stage's name (or index), the fully
    qualified OCI reference (``docker.io/library/nginx:latest``) or ``scratch``; ``ref`` is as written."""

    kind: BaseKind
    name: str
    ref: str
    platform: str | None = None
    stage_index: int | None = None


@dataclass(frozen=True)
class ManagedBase:
    """A base image Ember builds from Debian packages; ``aliases`` are the ``FROM`` references it answers."""

    name: str
    description: str
    aliases: tuple[str, ...]
    config: ImageConfig


MANAGED_BASES: Mapping[str, ManagedBase] = {
    base.name: base
    for base in (
        ManagedBase(
            "debian-bookworm",
            "Debian 12 (bookworm), minbase",
            ("debian:bookworm", "debian:bookworm-slim", "debian:12", "debian:12-slim"),
            ImageConfig(env={"PATH": DEFAULT_PATH}, cmd=("bash",)),
        ),
        ManagedBase(
            "python-3.11",
            "Debian 12 (bookworm) with python3 3.11, pip and venv; python, python3 and pip on PATH",
            ("python:3.11", "python:3.11-slim", "python:3.11-bookworm", "python:3.11-slim-bookworm"),
            ImageConfig(env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}, cmd=("python3",)),
        ),
    )
}
_MANAGED_BY_ALIAS = {alias: base for base in MANAGED_BASES.values() for alias in (*base.aliases, base.name)}


@dataclass(frozen=True, kw_only=True)
class Step:
    """One instruction of a stage: its 1-based line, keyword and source text (for build logs)."""

    line: int
    instruction: str
    text: str


@dataclass(frozen=True, kw_only=True)
class RunStep(Step):
    """Run ``argv`` as ``user`` in ``workdir`` with ``env`` (image ENV plus the ARG values in scope)."""

    argv: tuple[str, ...]
    shell_form: bool
    env: Mapping[str, str]
    workdir: str
    user: str


@dataclass(frozen=True, kw_only=True)
class CopyStep(Step):
    """COPY or ADD. ``sources`` are relative to the context (or to the root of stage ``from_stage``) and may
    hold wildcards; ``dest`` is absolute. With ``dest_is_dir`` sources go inside ``dest``; otherwise a single
    file source becomes ``dest``, unless ``dest`` already is a directory in the image. ``extract_archives``
    (ADD): a local tar archive (plain, gzip, bzip2, xz) is unpacked into ``dest``; see ``is_local_archive``."""

    sources: tuple[str, ...]
    dest: str
    dest_is_dir: bool
    from_stage: int | None = None
    chown: str | None = None  # "user", "user:group", "uid:gid" (names resolve in the image)
    chmod: int | None = None
    extract_archives: bool = False


@dataclass(frozen=True, kw_only=True)
class EnvStep(Step):
    """ENV: these variables now hold these values (already merged into later steps' env)."""

    values: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class ArgStep(Step):
    """ARG in a stage: ``value`` is None when it has no default and no build arg."""

    name: str
    value: str | None


@dataclass(frozen=True, kw_only=True)
class WorkdirStep(Step):
    """WORKDIR: the builder creates ``path`` (absolute) if it does not exist, as Docker does."""

    path: str


@dataclass(frozen=True, kw_only=True)
class UserStep(Step):
    """USER: later RUN steps and the app run as ``user`` ("name", "uid", "name:group")."""

    user: str


@dataclass(frozen=True, kw_only=True)
class ExposeStep(Step):
    """EXPOSE: ports as "8080/tcp"."""

    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class LabelStep(Step):
    """LABEL (and MAINTAINER, as the label ``maintainer``)."""

    labels: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class ShellStep(Step):
    """SHELL: later shell forms run through ``argv``."""

    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CmdStep(Step):
    """CMD, as argv (a shell form is already wrapped in the current SHELL)."""

    argv: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True, kw_only=True)
class EntrypointStep(Step):
    """ENTRYPOINT, as argv (a shell form is already wrapped in the current SHELL)."""

    argv: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True, kw_only=True)
class StopSignalStep(Step):
    """STOPSIGNAL: "SIGTERM" style, or a number."""

    signal: str


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and what follows it; ``config`` is the image config after its last step."""

    index: int
    name: str | None
    base: BaseRef
    line: int
    steps: tuple[Step, ...]
    config: ImageConfig


@dataclass(frozen=True)
class BuildPlan:
    """Stages in Dockerfile order; the last one is the image. ``unused_build_args`` were given but never
    declared (Docker warns about them)."""

    stages: tuple[Stage, ...]
    unused_build_args: tuple[str, ...] = ()

    @property
    def final(self) -> Stage:
        """The stage that becomes the image."""
        return self.stages[-1]

    @property
    def config(self) -> ImageConfig:
        """The image's config: env, workdir, user, argv, ports, labels, stop signal."""
        return self.final.config

    def required_stages(self) -> tuple[Stage, ...]:
        """The stages the final one needs (through FROM and COPY --from), in order; others need not run."""
        needed = {len(self.stages) - 1}
        for stage in reversed(self.stages):
            if stage.index not in needed:
                continue
            if stage.base.stage_index is not None:
                needed.add(stage.base.stage_index)
            needed.update(s.from_stage for s in stage.steps if isinstance(s, CopyStep) and s.from_stage is not None)
        return tuple(s for s in self.stages if s.index in needed)


# --------------------------------------------------------------------------------------------- words


class _WordError(ValueError):
    """A word cannot be expanded (unterminated quote, ${VAR:?message}, unknown modifier)."""


class _Words:
    """Docker's word rules: split on unquoted whitespace, then per word remove quotes and escapes and
    expand ``$VAR``, ``${VAR}``, ``${VAR:-w}``, ``${VAR-w}``, ``${VAR:+w}``, ``${VAR+w}``, ``${VAR:?m}``."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def split(self, text: str) -> list[str]:
        """Whitespace-separated words; quotes and escapes are kept for ``expand``."""
        words: list[str] = []
        word: list[str] = []
        quote = ""
        i = 0
        while i < len(text):
            ch = text[i]
            if not quote and ch.isspace():
                if word:
                    words.append("".join(word))
                    word = []
                i += 1
                continue
            if ch == self.escape and i + 1 < len(text):
                word.append(text[i : i + 2])
                i += 2
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "'\"":
                quote = ch
            word.append(ch)
            i += 1
        if word:
            words.append("".join(word))
        return words

    def expand(self, word: str, env: Mapping[str, str], *, quotes: bool = True) -> str:
        """One word with variables expanded and escapes removed; quotes too unless ``quotes`` is False
        (the strings of a JSON form are already unquoted)."""
        text, _ = self._process(word, 0, env, stop=None, quotes=quotes)
        return text

    def _process(
        self, s: str, i: int, env: Mapping[str, str], stop: str | None, quotes: bool = True
    ) -> tuple[str, int]:
        out: list[str] = []
        while i < len(s):
            ch = s[i]
            if stop is not None and ch == stop:
                return "".join(out), i + 1
            if not quotes and ch in "'\"":
                out.append(ch)
                i += 1
            elif ch == "'":
                end = s.find("'", i + 1)
                if end < 0:
                    raise _WordError(f"unterminated single quote in {s!r}")
                out.append(s[i + 1 : end])
                i = end + 1
            elif ch == '"':
                text, i = self._double_quoted(s, i + 1, env)
                out.append(text)
            elif ch == "$":
                text, i = self._dollar(s, i + 1, env)
                out.append(text)
            elif ch == self.escape:
                out.append(s[i + 1 : i + 2])  # an escape at the very end is dropped, as Docker does
                i += 2
            else:
                out.append(ch)
                i += 1
        if stop is not None:
            raise _WordError(f"missing {stop!r} in {s!r}")
        return "".join(out), i

    def _double_quoted(self, s: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
        out: list[str] = []
        while i < len(s):
            ch = s[i]
            if ch == '"':
                return "".join(out), i + 1
            if ch == "$":
                text, i = self._dollar(s, i + 1, env)
                out.append(text)
            elif ch == self.escape and i + 1 < len(s) and s[i + 1] in ('"', "$", self.escape):
                out.append(s[i + 1])
                i += 2
            else:
                out.append(ch)
                i += 1
        raise _WordError(f"unterminated double quote in {s!r}")

    def _dollar(self, s: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
        if i < len(s) and s[i] == "{":
            m = _NAME.match(s, i + 1)
            if not m:
                raise _WordError(f"bad substitution in {s!r}: '${{' must be followed by a variable name")
            name, i = m.group(), m.end()
            if i < len(s) and s[i] == "}":
                return env.get(name, ""), i + 1
            colon = s.startswith(":", i)
            op = s[i + colon : i + colon + 1]
            if op not in ("-", "+", "?"):
                raise _WordError(f"unsupported modifier in ${{{name}{s[i : i + 2]}…}} (supported: :-, -, :+, +, :?, ?)")
            word, i = self._process(s, i + colon + 1, env, stop="}")
            value = env.get(name)
            is_set = value is not None and (value != "" or not colon)
            if op == "-":
                return (value if is_set else word) or "", i
            if op == "+":
                return (word if is_set else ""), i
            if not is_set:
                raise _WordError(f"{name}: {word or 'is not set'}")
            return value or "", i
        m = _NAME.match(s, i)
        if not m:
            return "$", i
        return env.get(m.group(), ""), m.end()


# --------------------------------------------------------------------------------------------- FROM


def _managed_listing() -> str:
    return "; ".join(f"{b.name} (FROM {', '.join(b.aliases)})" for b in MANAGED_BASES.values())


def resolve_base(ref: str, *, stages: Mapping[str, int] | None = None, platform: str | None = None) -> BaseRef:
    """Resolve a ``FROM`` reference (optionally ``--platform=…`` first): an earlier stage's name, a managed
    base (``debian:bookworm``, ``python:3.11-slim``, ``docker.io/library/debian:12``…), ``scratch``, or any
    other valid reference as an OCI image. ``al2023*`` raises: it is not available here."""
    text = ref.strip()
    if text.startswith("--platform="):
        flag, _, text = text.partition(" ")
        platform = flag.partition("=")[2] or None
        text = text.strip()
    if not text:
        raise DockerfileError("FROM needs an image reference")
    lowered = text.lower()
    if stages and lowered in stages:
        return BaseRef(BaseKind.STAGE, lowered, text, platform, stages[lowered])
    if lowered == "scratch":
        return BaseRef(BaseKind.SCRATCH, "scratch", text, platform)
    short = text
    for prefix in _HUB_PREFIXES:
        if short.startswith(prefix):
            short = short[len(prefix) :]
            break
    if short.lower().startswith("al2023"):
        raise DockerfileError(
            f"base image {text!r}: Amazon Linux 2023 (al2023) images are not available in Ember; "
            f"managed bases: {_managed_listing()}; or name an OCI image from a reachable registry"
        )
    managed = _MANAGED_BY_ALIAS.get(short)
    if managed is not None:
        return BaseRef(BaseKind.MANAGED, managed.name, text, platform)
    if not _OCI_REF.match(text):
        raise DockerfileError(
            f"base image {text!r} is not a valid image reference (expected [registry/]name[:tag][@digest], "
            f"lowercase); managed bases: {_managed_listing()}"
        )
    return BaseRef(BaseKind.OCI, _qualified(text), text, platform)


def _qualified(ref: str) -> str:
    """``nginx`` → ``docker.io/library/nginx:latest``: the name Docker would pull."""
    first, slash, rest = ref.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "docker.io", ref
    if first == "docker.io" and "/" not in rest:
        rest = f"library/{rest}"
    if "@" not in rest and ":" not in rest.rsplit("/", 1)[-1]:
        rest += ":latest"
    return f"{first}/{rest}"


def _host_platform_args() -> dict[str, str]:
    machine = _platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    args = {"OS": "linux", "ARCH": arch, "VARIANT": "", "PLATFORM": f"linux/{arch}"}
    return {f"{kind}{k}": v for kind in ("BUILD", "TARGET") for k, v in args.items()}


# --------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    value: str
    line: int
    text: str


def _instructions(text: str) -> tuple[list[_Instruction], str]:
    """Instructions (comments dropped) and the escape character from the ``# escape=`` directive."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    escape = "\\"
    for raw in lines:
        m = re.match(r"^\s*#\s*([A-Za-z]+)\s*=\s*(\S*)\s*$", raw)
        if not m:
            break
        if m.group(1).lower() == "escape":
            if m.group(2) not in ("\\", "`"):
                raise DockerfileError(f"the escape directive must be '\\' or '`', not {m.group(2)!r}", 1)
            escape = m.group(2)
    # Docker lets a continued instruction run on across blank lines; dockerfile-parse would end it there.
    # A blank line inside a continuation becomes a comment line, which both skip (line numbers stay).
    continued = False
    for i, raw in enumerate(lines):
        if continued and not raw.strip():
            lines[i] = "#"
        elif not raw.lstrip().startswith("#"):
            continued = raw.rstrip().endswith(escape)
    # The trailing newline: dockerfile-parse drops a last line that holds a bare keyword and no newline.
    text = "\n".join(lines).rstrip("\n") + "\n"
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), env_replace=False)
    found = [
        _Instruction(s["instruction"], s["value"].strip(), s["startline"] + 1, s["content"].strip())
        for s in parser.structure
        if s["instruction"] != "COMMENT"
    ]
    return found, escape


@dataclass
class _StageState:
    index: int
    name: str | None
    base: BaseRef
    line: int
    env: dict[str, str]
    args: dict[str, str | None]
    workdir: str
    user: str
    shell: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    entrypoint_shell_form: bool
    cmd: tuple[str, ...] | None
    exposed_ports: list[str]
    labels: dict[str, str]
    stopsignal: str | None
    cmd_set: bool = False
    steps: list[Step] = field(default_factory=list)

    def scope(self) -> dict[str, str]:
        """What ``$VAR`` sees: ARG values in scope, overridden by ENV (Docker: ENV wins over ARG)."""
        return {**{k: v for k, v in self.args.items() if v is not None}, **self.env}

    def config(self) -> ImageConfig:
        return ImageConfig(
            dict(self.env), self.workdir, self.user, self.shell, self.entrypoint, self.entrypoint_shell_form,
            self.cmd, tuple(self.exposed_ports), dict(self.labels), self.stopsignal,
        )  # fmt: skip


BaseConfig = Callable[[BaseRef], ImageConfig | None]


def plan_dockerfile(
    text: str,
    *,
    build_args: Mapping[str, str] | None = None,
    base_config: BaseConfig | None = None,
) -> BuildPlan:
    """Plan ``text`` (a Dockerfile) with ``build_args`` (``--build-arg``) into a ``BuildPlan``.

    ``base_config`` gives the config (ENV, WORKDIR, USER, CMD…) an OCI base image carries, so that
    ``ENV PATH=/x:$PATH`` sees the image's ``PATH``: plan once, inspect ``plan.stages[i].base`` for OCI
    images, then plan again with their configs. Without it an OCI base is assumed to set only ``PATH``.
    Managed bases, earlier stages and ``scratch`` need nothing. Raises ``DockerfileError``.
    """
    return _Planner(dict(build_args or {}), base_config).plan(text)


class _Planner:
    def __init__(self, build_args: dict[str, str], base_config: BaseConfig | None) -> None:
        self.build_args = build_args
        self.base_config = base_config
        self.used: set[str] = set()
        self.automatic = _host_platform_args()
        self.global_args: dict[str, str | None] = {}
        self.stages: list[Stage] = []
        self.names: dict[str, int] = {}
        self.stage: _StageState | None = None
        self.words = _Words()

    def plan(self, text: str) -> BuildPlan:
        instructions, escape = _instructions(text)
        self.words = _Words(escape)
        for ins in instructions:
            try:
                self._dispatch(ins)
            except DockerfileError as e:
                if e.line is None:
                    raise DockerfileError(e.detail, ins.line) from None
                raise
            except _WordError as e:
                raise DockerfileError(f"{ins.keyword}: {e}", ins.line) from None
        if self.stage is None:
            line = instructions[-1].line if instructions else 1
            raise DockerfileError("the Dockerfile has no FROM instruction", line)
        self._finish_stage()
        unused = sorted(set(self.build_args) - self.used - _PROXY_ARGS)
        return BuildPlan(tuple(self.stages), tuple(unused))

    # ---- helpers

    def _expand(self, word: str) -> str:
        assert self.stage is not None
        return self.words.expand(word, self.stage.scope())

    def _step_fields(self, ins: _Instruction) -> dict[str, object]:
        return {"line": ins.line, "instruction": ins.keyword, "text": ins.text}

    def _argv(self, ins: _Instruction, value: str) -> tuple[tuple[str, ...], bool]:
        """(argv, shell_form) of RUN/CMD/ENTRYPOINT; a JSON exec form is taken as it is."""
        assert self.stage is not None
        exec_form = _json_list(ins, value)
        if exec_form is not None:
            return exec_form, False
        if not value:
            raise DockerfileError(f"{ins.keyword} needs a command")
        return (*self.stage.shell, value), True

    def _flags(self, ins: _Instruction, allowed: tuple[str, ...]) -> tuple[dict[str, str], str]:
        """Leading ``--name=value`` / ``--name`` flags and the rest of the value."""
        flags: dict[str, str] = {}
        rest = ins.value
        while m := re.match(r"^--([A-Za-z-]+)(?:=(\S*))?(?:\s+|$)", rest):
            name = m.group(1).lower()
            if name not in allowed:
                shown = ", ".join(f"--{a}" for a in allowed) or "none"
                raise DockerfileError(f"{ins.keyword} --{name} is not supported (supported flags: {shown})")
            flags[name] = m.group(2) if m.group(2) is not None else ""
            rest = rest[m.end() :]
        return flags, rest.strip()

    def _key_values(self, ins: _Instruction) -> dict[str, str]:
        """ENV/LABEL pairs, ``K=V K2=V2`` or legacy ``K V`` (the rest of the line), expanded with the scope
        before the instruction (so ``ENV A=1 B=$A`` sees the old ``A``, as in Docker)."""
        assert self.stage is not None
        words = self.words.split(ins.value)
        if not words:
            raise DockerfileError(f"{ins.keyword} needs at least one name=value")
        scope = self.stage.scope()
        if "=" not in words[0]:
            parts = ins.value.split(None, 1)
            if len(parts) < 2:
                raise DockerfileError(f"{ins.keyword} {parts[0]} needs a value ({ins.keyword} {parts[0]}=value)")
            pairs = [(parts[0], parts[1].strip())]
        else:
            pairs = []
            for word in words:
                key, eq, value = word.partition("=")
                if not eq or not key:
                    raise DockerfileError(f"{ins.keyword}: {word!r} is not of the form name=value")
                pairs.append((key, value))
        out = {}
        for key, value in pairs:
            name = self.words.expand(key, scope)
            if not name:
                raise DockerfileError(f"{ins.keyword}: empty name in {key!r}")
            out[name] = self.words.expand(value, scope)
        return out

    # ---- instructions

    def _dispatch(self, ins: _Instruction) -> None:
        keyword = ins.keyword
        if keyword in _REFUSED_WHY:
            raise DockerfileError(
                f"{keyword} is not supported: {_REFUSED_WHY[keyword]} (supported: {', '.join(SUPPORTED_INSTRUCTIONS)})"
            )
        if keyword not in SUPPORTED_INSTRUCTIONS:
            raise DockerfileError(f"{keyword} is not supported (supported: {', '.join(SUPPORTED_INSTRUCTIONS)})")
        if keyword == "FROM":
            self._from(ins)
        elif keyword == "ARG":
            self._arg(ins)
        elif self.stage is None:
            raise DockerfileError(f"{keyword} comes before the first FROM (only ARG may)")
        else:
            getattr(self, f"_{keyword.lower()}")(ins)

    def _from(self, ins: _Instruction) -> None:
        if self.stage is not None:
            self._finish_stage()
        flags, rest = self._flags(ins, ("platform",))
        scope = {**self.automatic, **{k: v for k, v in self.global_args.items() if v is not None}}
        words = [self.words.expand(w, scope) for w in self.words.split(rest)]
        if len(words) == 3 and words[1].lower() == "as":
            name: str | None = words[2].lower()
        elif len(words) == 1:
            name = None
        else:
            raise DockerfileError(f"FROM takes an image and an optional 'AS name', got {rest!r}")
        if name is not None:
            if not _STAGE_NAME.match(name):
                raise DockerfileError(f"stage name {name!r} must start with a letter and hold only a-z 0-9 _ . -")
            if name in self.names:
                raise DockerfileError(f"stage name {name!r} is already used by stage {self.names[name]}")
        platform_flag = self.words.expand(flags["platform"], scope) if "platform" in flags else None
        base = resolve_base(words[0], stages=self.names, platform=platform_flag)
        if base.kind is BaseKind.STAGE:
            config = self.stages[base.stage_index or 0].config
        elif base.kind is BaseKind.MANAGED:
            config = MANAGED_BASES[base.name].config
        elif base.kind is BaseKind.SCRATCH:
            config = ImageConfig()
        else:
            given = self.base_config(base) if self.base_config else None
            config = given or ImageConfig(env={"PATH": DEFAULT_PATH})
        index = len(self.stages)
        if name is not None:
            self.names[name] = index
        self.stage = _StageState(
            index, name, base, ins.line, dict(config.env), {}, config.workdir, config.user, config.shell,
            config.entrypoint, config.entrypoint_shell_form, config.cmd, list(config.exposed_ports),
            dict(config.labels), config.stopsignal,
        )  # fmt: skip

    def _finish_stage(self) -> None:
        s = self.stage
        assert s is not None
        self.stages.append(Stage(s.index, s.name, s.base, s.line, tuple(s.steps), s.config()))
        self.stage = None

    def _arg(self, ins: _Instruction) -> None:
        words = self.words.split(ins.value)
        if not words:
            raise DockerfileError("ARG needs a name (ARG NAME or ARG NAME=default)")
        for word in words:
            name, eq, default = word.partition("=")
            if not _ARG_NAME.match(name):
                raise DockerfileError(f"ARG name {name!r} must be letters, digits and _ (not starting with a digit)")
            if self.stage is None:
                scope = {**self.automatic, **{k: v for k, v in self.global_args.items() if v is not None}}
                value = self.words.expand(default, scope) if eq else None
                if name in self.build_args:
                    value = self.build_args[name]
                    self.used.add(name)
                self.global_args[name] = value
                continue
            value = self._expand(default) if eq else None
            if name in self.build_args:
                value = self.build_args[name]
                self.used.add(name)
            elif not eq:
                value = self.global_args.get(name, self.automatic.get(name))
            self.stage.args[name] = value
            self.stage.steps.append(ArgStep(**self._step_fields(ins), name=name, value=value))

    def _run(self, ins: _Instruction) -> None:
        assert self.stage is not None
        if ins.value.startswith("--"):
            flag = ins.value.split("=", 1)[0].split()[0]
            raise DockerfileError(f"RUN {flag} is not supported (RUN takes no flags here)")
        if _HEREDOC.search(ins.value) and not ins.value.lstrip().startswith("["):
            raise DockerfileError("heredocs (<<EOF) are not supported; put the script in the artifact and COPY it")
        argv, shell_form = self._argv(ins, ins.value)
        if not argv:
            raise DockerfileError("RUN needs a command")
        env = self.stage.scope()
        for name in _PROXY_ARGS & self.build_args.keys():
            env.setdefault(name, self.build_args[name])
            self.used.add(name)
        s = self.stage
        self.stage.steps.append(
            RunStep(**self._step_fields(ins), argv=argv, shell_form=shell_form, env=env, workdir=s.workdir, user=s.user)
        )

    def _cmd(self, ins: _Instruction) -> None:
        assert self.stage is not None
        argv, shell_form = self._argv(ins, ins.value)
        self.stage.cmd, self.stage.cmd_set = argv, True
        self.stage.steps.append(CmdStep(**self._step_fields(ins), argv=argv, shell_form=shell_form))

    def _entrypoint(self, ins: _Instruction) -> None:
        assert self.stage is not None
        argv, shell_form = self._argv(ins, ins.value)
        self.stage.entrypoint, self.stage.entrypoint_shell_form = argv, shell_form
        if not self.stage.cmd_set:
            self.stage.cmd = None  # Docker: ENTRYPOINT resets a CMD inherited from the base image
        self.stage.steps.append(EntrypointStep(**self._step_fields(ins), argv=argv, shell_form=shell_form))

    def _shell(self, ins: _Instruction) -> None:
        assert self.stage is not None
        argv = _json_list(ins, ins.value)
        if not argv:
            raise DockerfileError('SHELL needs a non-empty JSON array, e.g. SHELL ["/bin/bash", "-c"]')
        self.stage.shell = argv
        self.stage.steps.append(ShellStep(**self._step_fields(ins), argv=argv))

    def _env(self, ins: _Instruction) -> None:
        assert self.stage is not None
        values = self._key_values(ins)
        self.stage.env.update(values)
        self.stage.steps.append(EnvStep(**self._step_fields(ins), values=values))

    def _label(self, ins: _Instruction) -> None:
        assert self.stage is not None
        labels = self._key_values(ins)
        self.stage.labels.update(labels)
        self.stage.steps.append(LabelStep(**self._step_fields(ins), labels=labels))

    def _maintainer(self, ins: _Instruction) -> None:
        assert self.stage is not None
        if not ins.value:
            raise DockerfileError("MAINTAINER needs a name")
        self.stage.labels["maintainer"] = ins.value
        self.stage.steps.append(LabelStep(**self._step_fields(ins), labels={"maintainer": ins.value}))

    def _workdir(self, ins: _Instruction) -> None:
        assert self.stage is not None
        path = self._expand(ins.value)
        if not path:
            raise DockerfileError("WORKDIR needs a path")
        self.stage.workdir = _absolute(self.stage.workdir, path)
        self.stage.steps.append(WorkdirStep(**self._step_fields(ins), path=self.stage.workdir))

    def _user(self, ins: _Instruction) -> None:
        assert self.stage is not None
        user = self._expand(ins.value)
        if not user or any(c.isspace() for c in user) or user.startswith(":") or user.endswith(":"):
            raise DockerfileError(f"USER needs user, uid, user:group or uid:gid; got {user!r}")
        self.stage.user = user
        self.stage.steps.append(UserStep(**self._step_fields(ins), user=user))

    def _expose(self, ins: _Instruction) -> None:
        assert self.stage is not None
        ports = []
        for word in self.words.split(ins.value):
            spec = self._expand(word)
            m = _PORT.match(spec)
            low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, 0)
            if not m or not 1 <= low <= high <= 65535:
                raise DockerfileError(f"EXPOSE {spec!r}: expected port[-port][/tcp|udp|sctp] with ports 1-65535")
            port = f"{low}-{high}" if m.group(2) else str(low)
            ports.append(f"{port}/{(m.group(3) or 'tcp').lower()}")
        if not ports:
            raise DockerfileError("EXPOSE needs at least one port")
        self.stage.exposed_ports.extend(p for p in ports if p not in self.stage.exposed_ports)
        self.stage.steps.append(ExposeStep(**self._step_fields(ins), ports=tuple(ports)))

    def _stopsignal(self, ins: _Instruction) -> None:
        assert self.stage is not None
        sig = _signal_name(self._expand(ins.value))
        self.stage.stopsignal = sig
        self.stage.steps.append(StopSignalStep(**self._step_fields(ins), signal=sig))

    def _copy(self, ins: _Instruction) -> None:
        self._copy_or_add(ins, ("from", "chown", "chmod", "link"))

    def _add(self, ins: _Instruction) -> None:
        self._copy_or_add(ins, ("chown", "chmod", "link"))

    def _copy_or_add(self, ins: _Instruction, allowed: tuple[str, ...]) -> None:
        assert self.stage is not None
        flags, rest = self._flags(ins, allowed)
        if _HEREDOC.match(rest):
            raise DockerfileError(f"heredocs (<<EOF) are not supported in {ins.keyword}; put the file in the artifact")
        as_json = _json_list(ins, rest)
        if as_json is not None:
            args = [self.words.expand(w, self.stage.scope(), quotes=False) for w in as_json]
        else:
            args = [self._expand(w) for w in self.words.split(rest)]
        if len(args) < 2 or not all(args):
            raise DockerfileError(f"{ins.keyword} needs at least one source and a destination")
        *sources, dest = args
        for src in sources:
            if _URL.match(src):
                raise DockerfileError(
                    f"{ins.keyword} of a URL ({src}) is not supported; put the file in the artifact, "
                    "or download it in a RUN step"
                )
        dest_is_dir = dest.endswith("/") or posixpath.basename(dest) in (".", "..") or len(sources) > 1
        if len(sources) > 1 and not dest.endswith("/"):
            raise DockerfileError(f"{ins.keyword} with several sources needs a destination ending in '/', got {dest!r}")
        from_stage = self._from_stage(flags["from"]) if "from" in flags else None
        chown = self._expand(flags["chown"]) if flags.get("chown") else None
        if chown is not None and (chown.startswith(":") or chown.endswith(":") or chown.count(":") > 1):
            raise DockerfileError(f"--chown={chown!r}: expected user, user:group, uid or uid:gid")
        chmod = _chmod(self._expand(flags["chmod"])) if "chmod" in flags else None
        self.stage.steps.append(
            CopyStep(
                **self._step_fields(ins),
                sources=tuple(posixpath.normpath("/" + s).lstrip("/") or "." for s in sources),
                dest=_absolute(self.stage.workdir, dest),
                dest_is_dir=dest_is_dir,
                from_stage=from_stage,
                chown=chown,
                chmod=chmod,
                extract_archives=ins.keyword == "ADD",
            )
        )

    def _from_stage(self, raw: str) -> int:
        assert self.stage is not None
        ref = self._expand(raw).lower()
        known = ", ".join(f"{s.name or '(unnamed)'} ({s.index})" for s in self.stages) or "none"
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        if ref in self.names:
            return self.names[ref]
        raise DockerfileError(
            f"COPY --from={ref or raw!r} names no earlier stage (earlier stages: {known}); "
            "copying from an image is not supported"
        )


def _json_list(ins: _Instruction, value: str) -> tuple[str, ...] | None:
    """A JSON exec form as a tuple, None for a shell form; a value that looks like JSON but is not raises.

    ``[`` followed by a non-blank that is not ``[`` (or by blanks and a quote) ends in ``]``: that reads as an
    attempted exec form; ``[ -f x ]`` and ``[[ … ]]`` stay shell commands.
    """
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    looks_json = re.match(r"^\[(?:[^\s\[]|\s*[\"'\]])", text) is not None
    if not looks_json:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise DockerfileError(
            f"{ins.keyword} looks like the JSON exec form but is not valid JSON ({e.msg} at column {e.colno}); "
            f'write it as {ins.keyword} ["executable", "arg"] with double quotes'
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
        raise DockerfileError(f"{ins.keyword} exec form must be a JSON array of strings, got {text}")
    return tuple(parsed)


def _absolute(workdir: str, path: str) -> str:
    """``path`` resolved against ``workdir``, normalised, always absolute (no trailing slash)."""
    joined = posixpath.join(workdir, path) if not path.startswith("/") else path
    return "/" + posixpath.normpath(joined).lstrip("/")


def _chmod(text: str) -> int:
    if not re.fullmatch(r"0?[0-7]{3,4}", text) or int(text, 8) > 0o7777:
        raise DockerfileError(f"--chmod={text!r}: expected an octal mode like 755 or 0644")
    return int(text, 8)


def _signal_name(text: str) -> str:
    if text.isdigit():
        if not 1 <= int(text) <= 64:
            raise DockerfileError(f"STOPSIGNAL {text}: signal numbers are 1-64")
        return text
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    if name in signal.Signals.__members__ or re.fullmatch(r"SIGRTMIN(\+\d+)?|SIGRTMAX(-\d+)?", name):
        return name
    raise DockerfileError(f"STOPSIGNAL {text!r} is not a signal name (SIGTERM, SIGINT, …) or number")


# --------------------------------------------------------------------------------------------- context


def check_sources(plan: BuildPlan, context: Path) -> None:
    """Raise ``DockerfileError`` (with the line) for a COPY/ADD source that matches nothing in ``context``.

    Only stages the image needs are checked, and only sources from the context (``--from`` sources live in
    a stage's filesystem, known only while building). Wildcards match as in ``glob``.
    """
    for stage in plan.required_stages():
        for step in stage.steps:
            if not isinstance(step, CopyStep) or step.from_stage is not None:
                continue
            for src in step.sources:
                if src == ".":
                    continue
                if any(c in src for c in "*?["):
                    found = any(context.glob(src))
                else:
                    found = (context / src).exists() or (context / src).is_symlink()
                if not found:
                    raise DockerfileError(f"{step.instruction} source {src!r} is not in the artifact", step.line)


def is_local_archive(path: Path) -> bool:
    """Whether ADD unpacks ``path``: a tar archive, plain or compressed with gzip, bzip2 or xz."""
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False
