"""Per-account quotas of uploaded code artifacts: zips kept, their bytes, and uploads at once (``ctx.quotas``).

Uploads are files, not rows, so the account's upload folder is what is counted: its zips (``<sha256>.zip``) and
everything else in it (a temp file an earlier process left behind counts until it is removed, an hour after it
was last written), plus the uploads streaming now. An upload in flight counts as one artifact and as its declared
``Content-Length`` or the bytes it has received, whichever is more; it is checked when it starts (before a byte of
its body is read) and after every chunk, and cut off the moment the account's total passes the bound. An upload
of a zip the account already keeps (same SHA-256) replaces it with the same bytes, so it counts for nothing.

Checks and changes are serialised per account by an asyncio lock: a listing of the folder (off the event loop),
the rename that keeps a finished upload and a deletion never interleave, so two uploads cannot both take the last
bytes. The in-memory state is this process's only: each check starts from a fresh listing, so zips removed by
hand are seen at the next upload. Temp files are named after the upload that owns them (``.upload-<token>-…``),
so a listing tells this process's uploads in flight from files left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ember.api.context import Quotas
from ember.contract.errors import ServiceQuotaExceededException, ThrottlingException

ARTIFACT_COUNT_QUOTA_CODE = "ember-max-artifacts"
"""Ember's quota of uploaded zips an account keeps (the managed service has no uploads)."""
ARTIFACT_STORAGE_QUOTA_CODE = "ember-max-artifact-storage-bytes"
"""Ember's quota of the bytes of those zips."""
CONCURRENT_UPLOADS_QUOTA_CODE = "ember-max-concurrent-uploads"
"""Ember's quota of uploads one account streams at the same time."""
UPLOAD_RETRY_AFTER_S = 5
"""Retry-After of a refused concurrent upload: about how long a large upload takes on a local network."""
TEMP_PREFIX = ".upload-"
TEMP_SUFFIX = ".part"
STALE_TEMP_S = 3600.0
"""A temp file no upload of this process owns is removed once unwritten this long (an upload in flight writes
every MiB; one left by a crashed process is garbage)."""
FREE_SPACE_HINT = "delete uploads you no longer build from with DELETE /ember/artifacts/{sha256}"
_GIB = 1024**3


@dataclass(eq=False)
class Upload:
    """One upload in flight: whose temp file it owns, the digest it declared and the bytes it counts as."""

    token: str
    digest: str
    reserved_bytes: int
    """Its declared Content-Length (0 when not declared), raised to the bytes received if those are more."""

    @property
    def temp_prefix(self) -> str:
        """The name prefix of the upload's temp file (``tempfile.mkstemp(prefix=…)``)."""
        return f"{TEMP_PREFIX}{self.token}-"


@dataclass(frozen=True)
class UploadUsage:
    """What an account's uploads take, counted as the quota checks count it."""

    artifacts: int
    """Zips kept, other files in the folder and uploads in flight (re-uploads of a kept zip not counted)."""
    artifact_bytes: int
    """Their bytes: files by size, uploads in flight by their declared or received bytes."""
    stored_bytes: int
    """Bytes of the zips kept, nothing else."""
    uploads_in_flight: int


@dataclass
class _Account:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    zips: dict[str, int] = field(default_factory=dict)
    """Kept zips, name without ``.zip`` → size: the last listing, then each keep and deletion."""
    other_bytes: int = 0
    other_count: int = 0
    uploads: list[Upload] = field(default_factory=list)

    def new_uploads(self, *, besides: Upload | None = None) -> list[Upload]:
        """Uploads in flight that would add a zip (not re-uploads of a kept one), ``besides`` left out."""
        return [u for u in self.uploads if u is not besides and u.digest not in self.zips]

    def totals(self, *, besides: Upload | None = None) -> tuple[int, int]:
        """(artifacts, bytes) counted against the quotas, ``besides`` left out."""
        new = self.new_uploads(besides=besides)
        count = len(self.zips) + self.other_count + len(new)
        size = sum(self.zips.values()) + self.other_bytes + sum(u.reserved_bytes for u in new)
        return count, size


@dataclass(frozen=True)
class _Listing:
    zips: dict[str, int]
    other_bytes: int
    other_count: int


def _list_folder(folder: Path, own_tokens: frozenset[str], now: float) -> _Listing:
    """The folder's zips and other files, leaving out this process's temp files and removing stale ones."""
    zips: dict[str, int] = {}
    other_bytes = other_count = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return _Listing({}, 0, 0)
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed meanwhile
            continue
        name = entry.name
        if name.endswith(".zip"):
            zips[name.removesuffix(".zip")] = st.st_size
            continue
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            if name.removeprefix(TEMP_PREFIX).split("-", 1)[0] in own_tokens:
                continue  # an upload in flight: counted by what it declared or received
            if now - st.st_mtime > STALE_TEMP_S:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                except OSError:
                    pass  # counted while it stays
                else:
                    continue
        other_bytes += st.st_size
        other_count += 1
    return _Listing(zips, other_bytes, other_count)


def _bound(value: int) -> str:
    return f"{value} bytes ({value / _GIB:.3g} GiB)" if value >= _GIB // 4 else f"{value} bytes"


class UploadQuotas:
    """The upload quotas of one server: per account, the uploads in flight and what its folder holds."""

    def __init__(self, limits: Quotas, *, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.clock = clock
        """Epoch seconds now (file modification times are compared with it)."""
        self._accounts: dict[str, _Account] = {}

    def _account(self, account_id: str) -> _Account:
        return self._accounts.setdefault(account_id, _Account())

    async def _refresh(self, folder: Path, account: _Account) -> None:
        """Re-read the folder (the caller holds the account's lock)."""
        tokens = frozenset(u.token for u in account.uploads)
        listing = await asyncio.to_thread(_list_folder, folder, tokens, self.clock())
        account.zips = listing.zips
        account.other_bytes = listing.other_bytes
        account.other_count = listing.other_count

    async def begin(self, folder: Path, account_id: str, digest: str, declared_bytes: int | None) -> Upload:
        """Count a new upload of ``digest`` into ``folder``, or refuse it: ThrottlingException (429, Retry-After)
        past the uploads at once, ServiceQuotaExceededException (402) if it would pass the artifacts kept or,
        by ``declared_bytes``, their bytes. Every upload begun must be ended (``end``)."""
        account = self._account(account_id)
        limit = self.limits.max_concurrent_uploads
        if len(account.uploads) >= limit:
            raise ThrottlingException(
                f"too many uploads at once: an account streams at most {limit} code artifacts at the same time "
                f"(concurrent uploads); retry after {UPLOAD_RETRY_AFTER_S} s",
                quota_code=CONCURRENT_UPLOADS_QUOTA_CODE,
                retry_after_seconds=UPLOAD_RETRY_AFTER_S,
            )
        upload = Upload(secrets.token_hex(8), digest, declared_bytes or 0)
        account.uploads.append(upload)  # before any await: the count of uploads at once holds
        try:
            async with account.lock:
                await self._refresh(folder, account)
                if digest in account.zips:
                    return upload  # a re-upload of a kept zip: it adds nothing
                count, _ = account.totals(besides=upload)
                if count + 1 > self.limits.max_artifacts:
                    raise ServiceQuotaExceededException(
                        f"the account keeps {count} uploaded code artifacts (uploads in flight included), the "
                        f"maximum is {self.limits.max_artifacts}: {FREE_SPACE_HINT}",
                        quota_code=ARTIFACT_COUNT_QUOTA_CODE,
                    )
                what = f"an upload of {declared_bytes} bytes (its Content-Length)" if declared_bytes else "a new upload"
                self._check_bytes(account, what)
        except BaseException:
            account.uploads.remove(upload)
            raise
        return upload

    def received(self, account_id: str, upload: Upload, size: int) -> None:
        """``upload`` has received ``size`` bytes so far: ServiceQuotaExceededException once the account's bytes
        pass the bound (the caller stops reading and removes the temp file)."""
        account = self._account(account_id)
        upload.reserved_bytes = max(upload.reserved_bytes, size)
        if upload.digest not in account.zips:  # a kept zip deleted meanwhile makes its re-upload count again
            self._check_bytes(account, f"the upload, at {size} bytes received,")

    def _check_bytes(self, account: _Account, what: str) -> None:
        _, total = account.totals()
        bound = self.limits.max_artifact_storage_bytes
        if total > bound:
            raise ServiceQuotaExceededException(
                f"{what} brings the account's uploaded code artifacts (uploads in flight included) to {total} "
                f"bytes, more than the maximum {_bound(bound)}: {FREE_SPACE_HINT}",
                quota_code=ARTIFACT_STORAGE_QUOTA_CODE,
            )

    async def keep(self, account_id: str, upload: Upload, temp: Path, dest: Path, size: int) -> None:
        """Rename the finished upload's ``temp`` to ``dest`` (``<digest>.zip``) and count it as kept."""
        account = self._account(account_id)
        async with account.lock:
            # A rename within one folder: no await between it and the count, so no listing sees one without the other.
            os.replace(temp, dest)
            account.zips[upload.digest] = size

    def end(self, account_id: str, upload: Upload) -> None:
        """``upload`` is over (kept, refused or cut off; its temp file already removed): it counts no more."""
        account = self._account(account_id)
        with contextlib.suppress(ValueError):
            account.uploads.remove(upload)

    async def delete(self, folder: Path, account_id: str, digest: str) -> bool:
        """Remove the kept zip ``digest`` of the account; False if there is none."""
        account = self._account(account_id)
        async with account.lock:
            try:
                await asyncio.to_thread(os.unlink, folder / f"{digest}.zip")
            except FileNotFoundError:
                return False
            finally:
                account.zips.pop(digest, None)
        return True

    async def usage(self, folder: Path, account_id: str) -> UploadUsage:
        """What the account's uploads take now, counted as the checks count it."""
        account = self._account(account_id)
        async with account.lock:
            await self._refresh(folder, account)
            count, size = account.totals()
            return UploadUsage(
                artifacts=count,
                artifact_bytes=size,
                stored_bytes=sum(account.zips.values()),
                uploads_in_flight=len(account.uploads),
            )


UPLOAD_QUOTAS = web.AppKey("ember_upload_quotas", UploadQuotas)
"""Where the app keeps its upload accounting (one per server, built from ``ctx.quotas``)."""
