"""The build service's scheduling seam: which host files a build may read is always the caller's explicit choice."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from ember.api.testing import FakeImageService
from ember.images.service import ImageService


@pytest.mark.parametrize("service", [ImageService, FakeImageService])
def test_schedule_takes_file_root_as_a_required_keyword(service: type) -> None:
    parameter = inspect.signature(service.schedule).parameters["file_root"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty


def test_schedule_without_file_root_is_a_type_error(tmp_path: Path) -> None:
    service = ImageService(store=None, host=None, images_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="file_root"):
        service.schedule("build-1")  # type: ignore[call-arg]
    assert service._tasks == {}
