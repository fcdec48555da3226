"""Fixtures: a migrated SQLite database per test (copied from one migrated template), and small data builders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ember.contract import ImageConfig, ImageVersionState
from ember.store import (
    Image,
    ImageVersion,
    Microvm,
    Store,
    accounts,
    create_engine,
    images,
    microvms,
    migrate,
    versions,
)

ACCOUNT = "111111111111"
OTHER = "222222222222"
T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)
CONFIG = ImageConfig.model_validate(
    {
        "baseImageArn": "arn:aws:lambda:us-east-1:aws:microvm-image:python-3.11",
        "buildRoleArn": "arn:aws:iam::111111111111:role/build",
        "codeArtifact": {"uri": "file:///srv/app.zip"},
        "resources": [{"minimumMemoryInMiB": 1024}],
    }
)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ember.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ember.db"
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store(create_engine(f"sqlite:///{db_path}"))
    with opened.write() as session:
        accounts.ensure_account(session, ACCOUNT, now=T0)
        accounts.ensure_account(session, OTHER, now=T0)
    yield opened
    opened.close()


def make_image(
    store: Store, name: str = "web", account: str = ACCOUNT, *, ready: bool = True
) -> tuple[Image, ImageVersion]:
    """An image with version "1", built and ACTIVE when ``ready``."""
    with store.write() as session:
        image = images.create_image(session, account, name, now=T0)
        version = versions.create_version(session, image, CONFIG, now=T0)
        if ready:
            versions.set_version_state(session, version, ImageVersionState.SUCCESSFUL, now=T0)
        session.refresh(image)
    return image, version


def make_microvm(
    store: Store,
    image: Image,
    version: ImageVersion,
    *,
    account: str = ACCOUNT,
    at: datetime = T0,
    microvm_id: str | None = None,
) -> Microvm:
    """A PENDING MicroVM of ``version``."""
    with store.write() as session:
        return microvms.insert_microvm(
            session,
            account_id=account,
            image=image,
            version=version,
            endpoint="127.0.0.1:9443/microvms/x",
            microvm_id=microvm_id,
            now=at,
        )


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
