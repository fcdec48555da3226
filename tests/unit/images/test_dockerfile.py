"""Unit tests of Dockerfile planning: steps, image config, ARG/ENV scopes, substitution, refusals, FROM."""

from __future__ import annotations

import contextlib
import io
import tarfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember import errors
from ember.images.dockerfile import (
    DEFAULT_PATH,
    MANAGED_BASES,
    ArgStep,
    BaseKind,
    BaseRef,
    CmdStep,
    CopyStep,
    DockerfileError,
    EntrypointStep,
    EnvStep,
    ExposeStep,
    ImageConfig,
    LabelStep,
    RunStep,
    StopSignalStep,
    UserStep,
    WorkdirStep,
    check_sources,
    is_local_archive,
    plan_dockerfile,
    resolve_base,
)

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples"  # shared/ sits beside the repository


def plan(text: str, **kwargs):
    return plan_dockerfile(textwrap.dedent(text).strip() + "\n", **kwargs)


def steps(text: str, **kwargs):
    return plan(text, **kwargs).final.steps


def error_of(text: str, **kwargs) -> str:
    with pytest.raises(DockerfileError) as info:
        plan(text, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- the sample apps


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/examples not beside the repository")
def test_flask_hello_plans_to_workdir_pip_copy_and_python_app() -> None:
    p = plan_dockerfile((EXAMPLES / "flask-hello" / "Dockerfile").read_text())
    assert len(p.stages) == 1
    assert p.final.base == BaseRef(BaseKind.MANAGED, "python-3.11", "python:3.11-slim")
    kinds = [type(s) for s in p.final.steps]
    assert kinds == [WorkdirStep, RunStep, CopyStep, ExposeStep, CmdStep]
    run = p.final.steps[1]
    assert isinstance(run, RunStep)
    assert run.argv == ("/bin/sh", "-c", "pip install --no-cache-dir flask==3.0.3")
    assert run.workdir == "/app" and run.user == "root" and run.env["PATH"] == DEFAULT_PATH
    copy = p.final.steps[2]
    assert isinstance(copy, CopyStep)
    assert (copy.sources, copy.dest, copy.dest_is_dir, copy.line) == (("app.py",), "/app", True, 4)
    assert p.config.argv == ("python", "app.py")
    assert p.config.workdir == "/app"
    assert p.config.tcp_ports() == (8080,)
    assert p.unused_build_args == ()


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/examples not beside the repository")
def test_code_interpreter_plans_env_into_run_and_final_config() -> None:
    p = plan_dockerfile((EXAMPLES / "code-interpreter" / "Dockerfile").read_text())
    env, run, workdir, copy, expose, cmd = p.final.steps
    assert isinstance(env, EnvStep) and env.values == {"SESSION_DIR": "/var/lib/session"}
    assert isinstance(run, RunStep)
    assert run.argv == ("/bin/sh", "-c", "mkdir -p $SESSION_DIR")  # the shell expands it, not the builder
    assert run.env["SESSION_DIR"] == "/var/lib/session" and run.workdir == "/"
    assert isinstance(workdir, WorkdirStep) and workdir.path == "/srv"
    assert isinstance(copy, CopyStep) and copy.dest == "/srv/server.py" and not copy.dest_is_dir
    assert isinstance(expose, ExposeStep) and expose.ports == ("8080/tcp",)
    assert isinstance(cmd, CmdStep) and not cmd.shell_form
    assert p.config.argv == ("python3", "/srv/server.py")
    assert p.config.env == {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "SESSION_DIR": "/var/lib/session"}
    assert p.config.workdir == "/srv"


# ---------------------------------------------------------------- stages


def test_multi_stage_copy_from_by_name_and_index() -> None:
    p = plan("""
        FROM debian:bookworm AS Build
        RUN make
        FROM debian:12 AS unused
        FROM python:3.11
        COPY --from=build /src/out/ /app/
        COPY --from=0 --chown=app:app --chmod=0755 /bin/tool /usr/local/bin/tool
        """)
    assert [s.name for s in p.stages] == ["build", "unused", None]
    first, second = p.final.steps
    assert isinstance(first, CopyStep) and first.from_stage == 0 and first.sources == ("src/out",)
    assert first.dest == "/app" and first.dest_is_dir
    assert isinstance(second, CopyStep) and (second.from_stage, second.chown, second.chmod) == (0, "app:app", 0o755)
    assert [s.index for s in p.required_stages()] == [0, 2]


def test_stage_based_on_earlier_stage_inherits_its_config() -> None:
    p = plan("""
        FROM python:3.11-slim AS base
        ENV APP=1
        WORKDIR /srv
        CMD ["python3", "x.py"]
        FROM base
        RUN true
        """)
    assert p.final.base.kind is BaseKind.STAGE and p.final.base.stage_index == 0
    run = p.final.steps[0]
    assert isinstance(run, RunStep) and run.env["APP"] == "1" and run.workdir == "/srv"
    assert p.config.argv == ("python3", "x.py")
    assert [s.index for s in p.required_stages()] == [0, 1]


def test_copy_from_unknown_or_later_stage_is_refused_with_line() -> None:
    message = error_of("FROM debian:12 AS a\nCOPY --from=b /x /y\nFROM debian:12 AS b")
    assert "line 2: COPY --from='b' names no earlier stage (earlier stages: none)" in message
    assert "line 3: COPY --from='7'" in error_of("FROM debian:12 AS a\nFROM debian:12\nCOPY --from=7 /x /y")
    assert "earlier stages: a (0)" in error_of("FROM debian:12 AS a\nFROM debian:12\nCOPY --from=7 /x /y")


def test_duplicate_and_bad_stage_names_are_refused() -> None:
    assert "line 2: stage name 'a' is already used by stage 0" in error_of("FROM debian:12 AS a\nFROM debian:12 AS A")
    assert "line 1: stage name '1x'" in error_of("FROM debian:12 AS 1x")


# ---------------------------------------------------------------- ARG


def test_arg_before_from_is_usable_in_from_and_overridable() -> None:
    text = "ARG PY=3.11\nARG VARIANT=slim\nFROM python:${PY}-${VARIANT}\nRUN echo"
    assert plan(text).final.base == BaseRef(BaseKind.MANAGED, "python-3.11", "python:3.11-slim")
    other = plan(text, build_args={"PY": "3.12"}).final.base
    assert other == BaseRef(BaseKind.OCI, "docker.io/library/python:3.12-slim", "python:3.12-slim")


def test_global_arg_is_visible_in_a_stage_only_when_redeclared() -> None:
    p = plan("""
        ARG VERSION=1.0
        FROM debian:12
        RUN echo before
        ARG VERSION
        RUN echo after
        ENV V=$VERSION
        """)
    before, arg, after, env = p.final.steps
    assert isinstance(before, RunStep) and "VERSION" not in before.env
    assert isinstance(arg, ArgStep) and (arg.name, arg.value) == ("VERSION", "1.0")
    assert isinstance(after, RunStep) and after.env["VERSION"] == "1.0"
    assert isinstance(env, EnvStep) and env.values == {"V": "1.0"}
    assert "VERSION" not in p.config.env  # ARG values are not kept in the image


def test_stage_arg_defaults_build_args_and_scope_order() -> None:
    p = plan(
        """
        FROM debian:12
        ENV EARLY=${NAME:-unset}
        ARG NAME=default
        ARG EMPTY
        ARG A=1 B=$A
        ENV LATE=$NAME
        """,
        build_args={"NAME": "given", "EXTRA": "x"},
    )
    early, name, empty, a, b, late = p.final.steps
    assert isinstance(early, EnvStep) and early.values == {"EARLY": "unset"}
    assert isinstance(name, ArgStep) and name.value == "given"
    assert isinstance(empty, ArgStep) and empty.value is None
    assert isinstance(a, ArgStep) and isinstance(b, ArgStep) and (a.value, b.value) == ("1", "1")
    assert isinstance(late, EnvStep) and late.values == {"LATE": "given"}
    assert p.unused_build_args == ("EXTRA",)


def test_args_do_not_cross_stages_and_env_wins_over_arg() -> None:
    p = plan("""
        FROM debian:12 AS one
        ARG X=from-arg
        ENV X=from-env
        RUN true
        FROM debian:12
        RUN true
        """)
    assert isinstance(p.stages[0].steps[-1], RunStep) and p.stages[0].steps[-1].env["X"] == "from-env"
    assert isinstance(p.final.steps[0], RunStep) and "X" not in p.final.steps[0].env


def test_proxy_build_args_reach_run_without_declaration() -> None:
    p = plan("FROM debian:12\nRUN apt-get update", build_args={"https_proxy": "http://proxy:3128"})
    run = p.final.steps[0]
    assert isinstance(run, RunStep) and run.env["https_proxy"] == "http://proxy:3128"
    assert p.unused_build_args == ()


def test_automatic_platform_args() -> None:
    p = plan("FROM --platform=$BUILDPLATFORM debian:12\nARG TARGETARCH\nRUN echo $TARGETARCH")
    assert p.final.base.platform and p.final.base.platform.startswith("linux/")
    assert isinstance(p.final.steps[1], RunStep) and p.final.steps[1].env["TARGETARCH"]


# ---------------------------------------------------------------- ENV, LABEL, substitution


def test_env_forms() -> None:
    p = plan("""
        FROM debian:12
        ENV A=1 B="two words" C=${A}x
        ENV LEGACY some value  with spaces
        ENV A=2 D=$A
        ENV QUOTED "q v"
        """)
    first, legacy, second, quoted = p.final.steps
    assert isinstance(first, EnvStep) and first.values == {"A": "1", "B": "two words", "C": "x"}
    assert isinstance(legacy, EnvStep) and legacy.values == {"LEGACY": "some value  with spaces"}
    assert isinstance(second, EnvStep) and second.values == {"A": "2", "D": "1"}  # D sees A before the line
    assert isinstance(quoted, EnvStep) and quoted.values == {"QUOTED": "q v"}
    assert p.config.env["A"] == "2" and p.config.env["C"] == "x"


def test_env_errors_name_the_line() -> None:
    assert "line 2: ENV A needs a value" in error_of("FROM debian:12\nENV A")
    assert "line 2: ENV: 'B' is not of the form name=value" in error_of("FROM debian:12\nENV A=1 B")


def test_env_path_extends_the_base_images_path() -> None:
    p = plan("FROM python:3.11\nENV PATH=/opt/venv/bin:$PATH")
    assert p.config.env["PATH"] == f"/opt/venv/bin:{DEFAULT_PATH}"


def test_base_config_supplies_oci_image_config() -> None:
    seen: list[BaseRef] = []

    def base_config(base: BaseRef) -> ImageConfig:
        seen.append(base)
        return ImageConfig(env={"PATH": "/usr/local/bin:/usr/bin"}, workdir="/home/node", cmd=("node",))

    p = plan("FROM node:20\nENV PATH=/app/bin:$PATH", base_config=base_config)
    assert seen == [BaseRef(BaseKind.OCI, "docker.io/library/node:20", "node:20")]
    assert p.config.env["PATH"] == "/app/bin:/usr/local/bin:/usr/bin"
    assert (p.config.workdir, p.config.argv) == ("/home/node", ("node",))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$A", "a"),
        ("${A}b", "ab"),
        ("x${UNSET}y", "xy"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:-dflt}", "a"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${UNSET:-${A}2}", "a2"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        (r"\$A", "$A"),
        (r'"\$A"', "$A"),
        ("$", "$"),
        ("$1x", "$1x"),
        ("a\\ b", "a b"),
    ],
)
def test_substitution(value: str, expected: str) -> None:
    p = plan(f"FROM debian:12\nARG A=a\nARG EMPTY=\nLABEL v={value}")
    assert p.config.labels["v"] == expected


def test_substitution_errors() -> None:
    assert "line 2: LABEL: X: must be set" in error_of('FROM debian:12\nLABEL v="${X:?must be set}"')
    assert "unsupported modifier" in error_of("FROM debian:12\nLABEL v=${X/a/b}")
    assert "line 2: ENV: unterminated double quote" in error_of('FROM debian:12\nENV A="x')


def test_substitution_applies_to_workdir_user_expose_stopsignal_copy() -> None:
    p = plan("""
        FROM debian:12
        ARG PORT=8080
        ENV HOME_DIR=/srv U=app SIG=TERM
        WORKDIR $HOME_DIR
        WORKDIR sub
        USER ${U}:${U}
        EXPOSE $PORT 9000/udp 7000-7002
        STOPSIGNAL $SIG
        COPY --chown=$U ${U}.py ./
        """)
    workdir, sub, user, expose, stop, copy = p.final.steps[2:]
    assert isinstance(workdir, WorkdirStep) and workdir.path == "/srv"
    assert isinstance(sub, WorkdirStep) and sub.path == "/srv/sub"
    assert isinstance(user, UserStep) and user.user == "app:app"
    assert isinstance(expose, ExposeStep) and expose.ports == ("8080/tcp", "9000/udp", "7000-7002/tcp")
    assert isinstance(stop, StopSignalStep) and stop.signal == "SIGTERM"
    assert isinstance(copy, CopyStep) and (copy.sources, copy.dest, copy.chown) == (("app.py",), "/srv/sub", "app")
    assert p.config.tcp_ports() == (8080,)
    assert p.config.user == "app:app" and p.config.stopsignal == "SIGTERM"


def test_labels_and_maintainer() -> None:
    p = plan('FROM debian:12\nLABEL "org.title"="My App" version=1\nMAINTAINER Jane <jane@example.com>')
    label, maintainer = p.final.steps
    assert isinstance(label, LabelStep) and label.labels == {"org.title": "My App", "version": "1"}
    assert isinstance(maintainer, LabelStep)
    assert p.config.labels == {"org.title": "My App", "version": "1", "maintainer": "Jane <jane@example.com>"}


# ---------------------------------------------------------------- RUN, CMD, ENTRYPOINT, SHELL


def test_run_shell_and_exec_forms_and_shell_instruction() -> None:
    p = plan("""
        FROM debian:12
        RUN echo $HOME && \\
            # a comment inside the continuation
            echo done
        RUN ["/usr/bin/env", "A=1", "printenv"]
        SHELL ["/bin/bash", "-o", "pipefail", "-c"]
        RUN [ -f /etc/os-release ] && echo yes
        USER nobody
        RUN id
        """)
    first, exec_form, _, bash, _, as_nobody = p.final.steps
    assert isinstance(first, RunStep) and first.shell_form
    assert first.argv == ("/bin/sh", "-c", "echo $HOME &&     echo done")
    assert isinstance(exec_form, RunStep) and exec_form.argv == ("/usr/bin/env", "A=1", "printenv")
    assert not exec_form.shell_form
    assert isinstance(bash, RunStep)
    assert bash.argv == ("/bin/bash", "-o", "pipefail", "-c", "[ -f /etc/os-release ] && echo yes")
    assert isinstance(as_nobody, RunStep) and as_nobody.user == "nobody"
    assert p.config.shell == ("/bin/bash", "-o", "pipefail", "-c")


def test_escape_directive_backtick() -> None:
    p = plan("# escape=`\nFROM debian:12\nRUN echo a `\n  b\nLABEL x=a`$b")
    run = p.final.steps[0]
    assert isinstance(run, RunStep) and run.argv[-1] == "echo a   b"
    assert p.config.labels["x"] == "a$b"


@pytest.mark.parametrize(
    ("lines", "argv"),
    [
        (['CMD ["python", "app.py"]'], ("python", "app.py")),
        (["CMD python app.py"], ("/bin/sh", "-c", "python app.py")),
        (['ENTRYPOINT ["tini", "--"]', 'CMD ["python", "app.py"]'], ("tini", "--", "python", "app.py")),
        (['ENTRYPOINT ["tini", "--"]', "CMD python app.py"], ("tini", "--", "/bin/sh", "-c", "python app.py")),
        (["ENTRYPOINT exec python app.py", 'CMD ["--debug"]'], ("/bin/sh", "-c", "exec python app.py")),
        (["ENTRYPOINT exec python app.py", "CMD --debug"], ("/bin/sh", "-c", "exec python app.py")),
        (['ENTRYPOINT ["python", "app.py"]'], ("python", "app.py")),  # the base's CMD is reset
        (['CMD ["--port", "80"]', 'ENTRYPOINT ["app"]'], ("app", "--port", "80")),  # CMD set in this stage stays
        ([], ("python3",)),  # inherited from the managed python base
        (["CMD []"], ()),
    ],
)
def test_entrypoint_cmd_combinations(lines: list[str], argv: tuple[str, ...]) -> None:
    p = plan("\n".join(["FROM python:3.11", *lines]))
    assert p.config.argv == argv


def test_entrypoint_and_cmd_steps_record_form() -> None:
    entry, cmd = steps('FROM debian:12\nENTRYPOINT ["a"]\nCMD b c')
    assert isinstance(entry, EntrypointStep) and not entry.shell_form
    assert isinstance(cmd, CmdStep) and cmd.shell_form and cmd.argv == ("/bin/sh", "-c", "b c")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("CMD [python, app.py]", "line 2: CMD looks like the JSON exec form but is not valid JSON"),
        ("CMD ['python', 'app.py']", "line 2: CMD looks like the JSON exec form but is not valid JSON"),
        ('ENTRYPOINT ["a", 1]', "line 2: ENTRYPOINT exec form must be a JSON array of strings"),
        ('RUN ["a",]', "line 2: RUN looks like the JSON exec form"),
        ("SHELL /bin/bash -c", "line 2: SHELL needs a non-empty JSON array"),
        ("SHELL []", "line 2: SHELL needs a non-empty JSON array"),
        ("RUN", "line 2: RUN needs a command"),
        ("RUN --mount=type=cache,target=/root/.cache pip install x", "line 2: RUN --mount is not supported"),
        ("RUN <<EOF", "line 2: heredocs (<<EOF) are not supported"),
        ("COPY <<EOF /x", "line 2: heredocs (<<EOF) are not supported in COPY"),
    ],
)
def test_bad_exec_forms_and_run_features(line: str, message: str) -> None:
    assert message in error_of(f"FROM debian:12\n{line}")


# ---------------------------------------------------------------- COPY and ADD


def test_copy_destinations_resolve_against_workdir() -> None:
    p = plan("""
        FROM debian:12
        WORKDIR /app
        COPY a.txt b.txt ./
        COPY src lib/
        COPY run.sh bin/run
        COPY ["with space.txt", "/abs/"]
        COPY ../../etc/passwd /x
        ADD --chown=1000:1000 vendor.tar.gz /opt/
        COPY --link . .
        """)
    multi, lib, single, spaced, clamped, add, everything = p.final.steps[1:]
    assert isinstance(multi, CopyStep) and (multi.sources, multi.dest, multi.dest_is_dir) == (
        ("a.txt", "b.txt"),
        "/app",
        True,
    )
    assert isinstance(lib, CopyStep) and (lib.dest, lib.dest_is_dir) == ("/app/lib", True)
    assert isinstance(single, CopyStep) and (single.dest, single.dest_is_dir) == ("/app/bin/run", False)
    assert isinstance(spaced, CopyStep) and spaced.sources == ("with space.txt",) and spaced.dest == "/abs"
    assert isinstance(clamped, CopyStep) and clamped.sources == ("etc/passwd",)  # sources never leave the context
    assert isinstance(add, CopyStep) and add.extract_archives and add.chown == "1000:1000"
    assert not multi.extract_archives
    assert isinstance(everything, CopyStep) and everything.sources == (".",) and everything.dest == "/app"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPY a b c", "line 2: COPY with several sources needs a destination ending in '/', got 'c'"),
        ("COPY onlyone", "line 2: COPY needs at least one source and a destination"),
        ("ADD https://example.com/x.tgz /opt/", "line 2: ADD of a URL (https://example.com/x.tgz) is not supported"),
        ("ADD --from=0 /x /y", "line 2: ADD --from is not supported (supported flags: --chown, --chmod, --link)"),
        ("COPY --parents a/ /b/", "line 2: COPY --parents is not supported"),
        ("COPY --chmod=u+x a /b", "line 2: --chmod='u+x': expected an octal mode"),
        ("COPY --chown=:grp a /b", "line 2: --chown=':grp'"),
    ],
)
def test_copy_and_add_refusals(line: str, message: str) -> None:
    assert message in error_of(f"FROM debian:12\n{line}")


def test_check_sources_against_context(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "m.py").write_text("x")
    p = plan("FROM debian:12 AS b\nCOPY nothere /x\nFROM debian:12\nCOPY app.py lib/*.py /app/\nCOPY . /all/")
    check_sources(p, tmp_path)  # stage b is not needed, so its missing source does not matter
    bad = plan("FROM debian:12\nCOPY app.py /a\nCOPY *.txt /t/")
    with pytest.raises(DockerfileError, match=r"line 3: COPY source '\*\.txt' is not in the artifact"):
        check_sources(bad, tmp_path)


def test_is_local_archive(tmp_path: Path) -> None:
    archive = tmp_path / "v.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "plain.txt").write_text("not an archive")
    assert is_local_archive(archive)
    assert not is_local_archive(tmp_path / "plain.txt")
    assert not is_local_archive(tmp_path / "missing")


# ---------------------------------------------------------------- refusals with line numbers


@pytest.mark.parametrize(
    ("instruction", "line"),
    [
        ("HEALTHCHECK CMD curl -f http://localhost/", 3),
        ("VOLUME /data", 3),
        ("ONBUILD RUN echo", 3),
        ("FROBNICATE now", 3),
    ],
)
def test_unsupported_instructions_name_line_and_supported_list(instruction: str, line: int) -> None:
    message = error_of(f"FROM debian:12\n# a comment\n{instruction}\nRUN true")
    keyword = instruction.split()[0]
    assert f"line {line}: {keyword} is not supported" in message
    assert "(supported: FROM, ARG, RUN, COPY, ADD, ENV, WORKDIR, USER, EXPOSE, LABEL, SHELL, CMD" in message


def test_missing_from_and_instructions_before_from() -> None:
    assert "line 2: the Dockerfile has no FROM instruction" in error_of("# nothing\nARG A=1")
    assert "line 1: the Dockerfile has no FROM instruction" in error_of("# only a comment")
    assert "line 2: RUN comes before the first FROM (only ARG may)" in error_of("ARG A=1\nRUN true\nFROM debian:12")


def test_line_numbers_count_continuations_and_comments() -> None:
    message = error_of("FROM debian:12\nRUN a \\\n  b\n\n# c\nVOLUME /x")
    assert message.startswith("Dockerfile: line 6: VOLUME is not supported")


def test_other_refusals() -> None:
    assert "line 2: EXPOSE '70000'" in error_of("FROM debian:12\nEXPOSE 70000")
    assert "line 2: STOPSIGNAL 'SIGNOPE'" in error_of("FROM debian:12\nSTOPSIGNAL SIGNOPE")
    assert "line 1: FROM takes an image and an optional 'AS name'" in error_of("FROM a b")
    assert "line 2: USER needs user" in error_of("FROM debian:12\nUSER a:")


def test_dockerfile_error_is_invalid_input_with_line() -> None:
    with pytest.raises(errors.InvalidInput) as info:
        plan("FROM debian:12\nVOLUME /x")
    assert isinstance(info.value, DockerfileError) and info.value.line == 2 and info.value.field == "Dockerfile"


# ---------------------------------------------------------------- FROM resolution


@pytest.mark.parametrize(
    ("ref", "managed"),
    [
        ("debian:bookworm", "debian-bookworm"),
        ("debian:bookworm-slim", "debian-bookworm"),
        ("debian:12", "debian-bookworm"),
        ("docker.io/library/debian:12", "debian-bookworm"),
        ("python:3.11", "python-3.11"),
        ("python:3.11-slim", "python-3.11"),
        ("python:3.11-bookworm", "python-3.11"),
        ("python:3.11-slim-bookworm", "python-3.11"),
        ("docker.io/library/python:3.11-slim", "python-3.11"),
        ("python-3.11", "python-3.11"),
    ],
)
def test_resolve_base_managed(ref: str, managed: str) -> None:
    base = resolve_base(ref)
    assert (base.kind, base.name, base.ref) == (BaseKind.MANAGED, managed, ref)
    assert managed in MANAGED_BASES


@pytest.mark.parametrize(
    ("ref", "qualified"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("debian", "docker.io/library/debian:latest"),  # latest is not bookworm
        ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
        ("python:3.11-alpine", "docker.io/library/python:3.11-alpine"),
        ("myuser/app:1.2", "docker.io/myuser/app:1.2"),
        ("ghcr.io/org/tool:v1", "ghcr.io/org/tool:v1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("python:3.11@sha256:" + "a" * 64, "docker.io/library/python:3.11@sha256:" + "a" * 64),
    ],
)
def test_resolve_base_oci(ref: str, qualified: str) -> None:
    assert resolve_base(ref) == BaseRef(BaseKind.OCI, qualified, ref)


def test_resolve_base_platform_stage_and_scratch() -> None:
    base = resolve_base("--platform=linux/amd64 python:3.11-slim")
    assert (base.kind, base.name, base.platform) == (BaseKind.MANAGED, "python-3.11", "linux/amd64")
    assert resolve_base("Builder", stages={"builder": 2}) == BaseRef(BaseKind.STAGE, "builder", "Builder", None, 2)
    assert resolve_base("scratch").kind is BaseKind.SCRATCH
    p = plan("FROM --platform=linux/amd64 debian:bookworm-slim AS x\nRUN true")
    assert p.final.base == BaseRef(BaseKind.MANAGED, "debian-bookworm", "debian:bookworm-slim", "linux/amd64")


@pytest.mark.parametrize("ref", ["al2023", "al2023-1", "al2023:latest", "docker.io/library/al2023-minimal"])
def test_resolve_base_al2023_is_not_available(ref: str) -> None:
    with pytest.raises(DockerfileError) as info:
        resolve_base(ref)
    message = str(info.value)
    assert "Amazon Linux 2023 (al2023) images are not available in Ember" in message
    assert "debian-bookworm (FROM debian:bookworm" in message and "python-3.11 (FROM python:3.11" in message


def test_resolve_base_errors_in_from_carry_the_line() -> None:
    assert "line 2: base image 'al2023-1'" in error_of("ARG X=1\nFROM al2023-1")
    assert "line 1: base image 'Not/Valid Ref'" in error_of('FROM "Not/Valid Ref"')


def test_crlf_and_blank_lines_inside_a_continuation() -> None:
    text = "FROM debian:12\r\nRUN apt-get update && \\\r\n\r\n    apt-get install -y curl\r\nUSER nobody\r\n"
    p = plan_dockerfile(text)
    run, user = p.final.steps
    assert isinstance(run, RunStep) and run.argv[-1] == "apt-get update &&     apt-get install -y curl"
    assert isinstance(user, UserStep) and (user.user, user.line) == ("nobody", 5)


_KEYWORDS = ["FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "EXPOSE", "LABEL", "CMD", "SHELL", "VOLUME"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_KEYWORDS), st.text(alphabet=" $:{}-+?=\"'\\[],/.#*`<@ab1\n", max_size=24)),
        max_size=6,
    )
)
def test_any_text_plans_or_raises_dockerfile_error(lines: list[tuple[str, str]]) -> None:
    text = "\n".join(["FROM debian:12 AS s", *(f"{k} {v}" for k, v in lines)])
    with contextlib.suppress(DockerfileError):
        plan_dockerfile(text, build_args={"A": "1"})
