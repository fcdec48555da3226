"""The upload quotas: uploads at once, zips kept and their bytes, counted from the folder and the uploads in flight."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ember.api.context import Quotas
from ember.api.upload_quotas import (
    ARTIFACT_COUNT_QUOTA_CODE,
    ARTIFACT_STORAGE_QUOTA_CODE,
    CONCURRENT_UPLOADS_QUOTA_CODE,
    STALE_TEMP_S,
    UPLOAD_RETRY_AFTER_S,
    UploadQuotas,
    UploadUsage,
)
from ember.contract.errors import ServiceQuotaExceededException, ThrottlingException

ACCOUNT = "111111111111"
NOW = 1_757_419_200.0


def digest(n: int) -> str:
    return f"{n:064x}"


def kept(folder: Path, n: int, size: int) -> str:
    """A kept zip of ``size`` bytes in ``folder``; its digest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{digest(n)}.zip").write_bytes(b"z" * size)
    return digest(n)


def quotas(**limits: int) -> UploadQuotas:
    return UploadQuotas(Quotas(**limits), clock=lambda: NOW)


async def test_a_third_upload_at_once_is_throttled_until_one_ends(tmp_path: Path) -> None:
    uploads = quotas(max_concurrent_uploads=2)
    first = await uploads.begin(tmp_path, ACCOUNT, digest(1), 10)
    await uploads.begin(tmp_path, ACCOUNT, digest(2), 10)
    with pytest.raises(ThrottlingException) as refused:
        await uploads.begin(tmp_path, ACCOUNT, digest(3), 10)
    assert refused.value.quota_code == CONCURRENT_UPLOADS_QUOTA_CODE
    assert refused.value.retry_after_seconds == UPLOAD_RETRY_AFTER_S
    assert "at most 2 code artifacts at the same time" in refused.value.message
    await uploads.begin(tmp_path, "222222222222", digest(3), 10)  # another account has its own count
    uploads.end(ACCOUNT, first)
    await uploads.begin(tmp_path, ACCOUNT, digest(3), 10)


async def test_the_count_quota_counts_kept_zips_and_uploads_in_flight(tmp_path: Path) -> None:
    uploads = quotas(max_artifacts=3)
    kept(tmp_path, 1, 10)
    kept(tmp_path, 2, 10)
    await uploads.begin(tmp_path, ACCOUNT, digest(3), 10)
    with pytest.raises(ServiceQuotaExceededException) as refused:
        await uploads.begin(tmp_path, ACCOUNT, digest(4), 10)
    assert refused.value.quota_code == ARTIFACT_COUNT_QUOTA_CODE
    assert refused.value.message.startswith(
        "the account keeps 3 uploaded code artifacts (uploads in flight included), the maximum is 3: "
        "delete uploads you no longer build from with DELETE /ember/artifacts/{sha256}"
    )
    # A zip the account keeps may be uploaded again: it replaces itself and adds nothing.
    await uploads.begin(tmp_path, ACCOUNT, digest(1), 10)
    assert (await uploads.usage(tmp_path, ACCOUNT)).artifacts == 3


async def test_the_byte_quota_refuses_by_content_length_before_reading(tmp_path: Path) -> None:
    uploads = quotas(max_artifact_storage_bytes=1000)
    kept(tmp_path, 1, 600)
    with pytest.raises(ServiceQuotaExceededException) as refused:
        await uploads.begin(tmp_path, ACCOUNT, digest(2), 401)
    assert refused.value.quota_code == ARTIFACT_STORAGE_QUOTA_CODE
    assert refused.value.message.startswith(
        "an upload of 401 bytes (its Content-Length) brings the account's uploaded code artifacts (uploads in "
        "flight included) to 1001 bytes, more than the maximum 1000 bytes: delete uploads"
    )
    upload = await uploads.begin(tmp_path, ACCOUNT, digest(2), 300)
    with pytest.raises(ServiceQuotaExceededException, match="to 1001 bytes"):
        await uploads.begin(tmp_path, ACCOUNT, digest(3), 101)  # the first upload's 300 bytes are taken
    uploads.end(ACCOUNT, upload)
    await uploads.begin(tmp_path, ACCOUNT, digest(3), 400)


async def test_an_upload_without_a_length_is_cut_off_once_its_bytes_pass_the_bound(tmp_path: Path) -> None:
    uploads = quotas(max_artifact_storage_bytes=1000)
    kept(tmp_path, 1, 600)
    upload = await uploads.begin(tmp_path, ACCOUNT, digest(2), None)
    uploads.received(ACCOUNT, upload, 400)
    with pytest.raises(ServiceQuotaExceededException) as refused:
        uploads.received(ACCOUNT, upload, 401)
    assert refused.value.message.startswith(
        "the upload, at 401 bytes received, brings the account's uploaded code artifacts (uploads in flight "
        "included) to 1001 bytes, more than the maximum 1000 bytes"
    )


async def test_a_re_upload_counts_nothing_until_its_kept_zip_is_deleted(tmp_path: Path) -> None:
    uploads = quotas(max_artifact_storage_bytes=1000)
    same = kept(tmp_path, 1, 900)
    upload = await uploads.begin(tmp_path, ACCOUNT, same, 900)
    uploads.received(ACCOUNT, upload, 900)
    assert await uploads.delete(tmp_path, ACCOUNT, same)
    uploads.received(ACCOUNT, upload, 900)  # now it adds a zip: 900 bytes, within the bound
    other = await uploads.begin(tmp_path, ACCOUNT, digest(2), 50)
    uploads.received(ACCOUNT, other, 50)
    with pytest.raises(ServiceQuotaExceededException):
        uploads.received(ACCOUNT, other, 101)


async def test_keeping_an_upload_moves_it_from_in_flight_to_kept(tmp_path: Path) -> None:
    uploads = quotas()
    upload = await uploads.begin(tmp_path, ACCOUNT, digest(1), 100)
    temp = tmp_path / f"{upload.temp_prefix}x.part"
    temp.write_bytes(b"t" * 40)  # part-way: counted by its Content-Length, not its size on disk
    assert await uploads.usage(tmp_path, ACCOUNT) == UploadUsage(
        artifacts=1, artifact_bytes=100, stored_bytes=0, uploads_in_flight=1
    )
    temp.write_bytes(b"t" * 100)
    await uploads.keep(ACCOUNT, upload, temp, tmp_path / f"{digest(1)}.zip", 100)
    uploads.end(ACCOUNT, upload)
    assert not temp.exists()
    assert await uploads.usage(tmp_path, ACCOUNT) == UploadUsage(
        artifacts=1, artifact_bytes=100, stored_bytes=100, uploads_in_flight=0
    )


async def test_files_left_behind_count_until_they_are_stale(tmp_path: Path) -> None:
    now = [NOW]
    uploads = UploadQuotas(Quotas(), clock=lambda: now[0])
    kept(tmp_path, 1, 10)
    left = tmp_path / ".upload-deadbeef-abc.part"  # an earlier process's upload
    left.write_bytes(b"x" * 30)
    os.utime(left, (NOW - 60, NOW - 60))
    (tmp_path / "notes.txt").write_bytes(b"y" * 5)
    assert await uploads.usage(tmp_path, ACCOUNT) == UploadUsage(
        artifacts=3, artifact_bytes=45, stored_bytes=10, uploads_in_flight=0
    )
    now[0] = NOW + STALE_TEMP_S
    assert (await uploads.usage(tmp_path, ACCOUNT)).artifacts == 2
    assert not left.exists()


async def test_delete_removes_only_a_kept_zip(tmp_path: Path) -> None:
    uploads = quotas()
    one = kept(tmp_path, 1, 10)
    assert await uploads.delete(tmp_path, ACCOUNT, one)
    assert not await uploads.delete(tmp_path, ACCOUNT, one)
    assert not await uploads.delete(tmp_path / "missing", ACCOUNT, one)
    assert (await uploads.usage(tmp_path, ACCOUNT)).artifacts == 0


async def test_a_missing_folder_counts_as_empty(tmp_path: Path) -> None:
    assert await quotas().usage(tmp_path / "none", ACCOUNT) == UploadUsage(0, 0, 0, 0)


async def test_a_refused_begin_holds_no_slot(tmp_path: Path) -> None:
    uploads = quotas(max_artifacts=1, max_concurrent_uploads=1)
    kept(tmp_path, 1, 10)
    for _ in range(3):
        with pytest.raises(ServiceQuotaExceededException):
            await uploads.begin(tmp_path, ACCOUNT, digest(2), 10)
    assert (await uploads.usage(tmp_path, ACCOUNT)).uploads_in_flight == 0
