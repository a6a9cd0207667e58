"""Datasets and their immutable versions (``client.datasets``)."""

import os
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterator, List, Optional, Union

from .. import exceptions as exc
from ._base import APIObject, Page, PathLike, Resource, id_of, poll, seg


class Dataset(APIObject):
    """A dataset: ``id`` (``ds_…``), ``project_id``, ``name``, ``description``, ``created_at``, ``created_by``."""


class DatasetVersion(APIObject):
    """An immutable dataset version: ``id`` (``dsv_…``), ``dataset_id``, ``name``, ``version``, ``status``
    (``profiling``, then ``ready`` or ``failed``), ``row_count``, ``columns`` (name and kind: numeric,
    categorical, boolean or text), ``profile`` (per-column statistics, the drift reference), ``sha256``,
    ``size_bytes``, ``profile_job_id``, ``error``."""

    @property
    def ready(self) -> bool:
        """Whether the profile has been computed."""
        return self.get("status") == "ready"

    def refresh(self) -> "DatasetVersion":
        """The version as it is now."""
        return self._client.datasets.get_version(self.id)

    def wait(self, timeout: Optional[float] = 600) -> "DatasetVersion":
        """Waits for the profile; see ``DatasetsResource.wait``."""
        return self._client.datasets.wait(self.id, timeout=timeout)

    def download(self, path: PathLike) -> Path:
        """Downloads the file of this version to ``path``."""
        return self._client.datasets.download(self.id, path)


class DatasetsResource(Resource):
    """Datasets: upload CSV files as versions, read their profiles, download them back."""

    def upload(
        self,
        project_id: str,
        path: Union[PathLike, IO[bytes]],
        name: str,
        description: Optional[str] = None,
        wait: bool = True,
        timeout: Optional[float] = 600,
        *,
        idempotency_key: Optional[str] = None,
    ) -> DatasetVersion:
        """Uploads a CSV file as a new version of dataset ``name`` in the project.

        The file is streamed, never read whole into memory. ``path`` may also be a binary file object
        (retried only if it can seek). A malformed file raises ``ValidationError`` whose message names
        the line and the problem. With ``wait=True`` (the default) this returns once the profile is
        computed (``status == "ready"``), raising ``JobFailedError`` if profiling failed and
        ``coreplexml.TimeoutError`` after ``timeout`` seconds; with ``wait=False`` it returns the version
        while it is still ``profiling``.
        """
        body, retry = _body_factory(path)
        params = {"name": name, "description": description}
        version = self._post(
            f"/projects/{seg(project_id)}/datasets",
            DatasetVersion,
            params=params,
            data=body,
            headers={"Content-Type": "text/csv"},
            idempotency_key=idempotency_key,
            timeout=(self._client.timeout, self._client.upload_timeout),
            retry=retry,
        )
        if wait:
            version = self.wait(version.id, timeout=timeout)
        return version

    def wait(self, version_id: str, timeout: Optional[float] = 600) -> DatasetVersion:
        """Polls a dataset version until its profile is done and its profiling job has finished;
        raises ``JobFailedError`` if profiling failed."""
        version_id = id_of(version_id)
        started = time.monotonic()
        version = poll(
            lambda: self.get_version(version_id),
            lambda v: v.get("status") != "profiling",
            timeout=timeout,
            what=f"profiling of dataset version {version_id}",
        )
        if version.status == "failed":
            raise exc.JobFailedError(
                f"profiling dataset version {version_id} failed: {version.get('error') or 'no reason given'}",
                job=version,
            )
        # The server marks the version ready just before it records its profiling job as finished;
        # wait for that too (within what is left of ``timeout``), so the job reads as succeeded once
        # this returns.
        if version.get("profile_job_id"):
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            self._client.jobs.wait(version.profile_job_id, timeout=left, raise_on_failure=False)
        return version

    def list(self, project_id: str, *, limit: Optional[int] = None, page_token: Optional[str] = None) -> Page:
        """The project's datasets: all of them, or one page when ``limit``/``page_token`` is given."""
        return self._list(f"/projects/{seg(project_id)}/datasets", Dataset, limit=limit, page_token=page_token)

    def iter(self, project_id: str, *, page_size: Optional[int] = None) -> Iterator[Dataset]:
        """Iterates over every dataset of the project, fetching pages lazily."""
        return self._iter(f"/projects/{seg(project_id)}/datasets", Dataset, page_size=page_size)

    def get(self, dataset_id: str) -> Dataset:
        """One dataset (name and description; its data is in its versions)."""
        return self._get(f"/datasets/{seg(dataset_id)}", Dataset)

    def versions(self, dataset_id: str) -> List[DatasetVersion]:
        """Every version of a dataset."""
        return self._get_list(f"/datasets/{seg(dataset_id)}/versions", DatasetVersion)

    def get_version(self, version_id: str, *, include_sketches: bool = False) -> DatasetVersion:
        """One dataset version with its profile (``include_sketches`` adds the large mergeable sketches)."""
        params = {"sketches": True} if include_sketches else None
        return self._get(f"/dataset-versions/{seg(version_id)}", DatasetVersion, params=params)

    def download(self, version_id: str, path: PathLike) -> Path:
        """Streams the version's file, byte for byte as uploaded, to ``path`` (a file or a folder)."""
        version_id = id_of(version_id)
        return self._download(
            f"/dataset-versions/{seg(version_id)}/download", path, default_name=f"{version_id}.csv"
        )


def _body_factory(source: Union[PathLike, IO[bytes]]) -> "tuple[Callable[[], Any], bool]":
    """A function giving a fresh streamed body for each attempt, and whether a retry is possible."""
    if hasattr(source, "read"):
        fobj = source
        try:
            start = fobj.tell()  # type: ignore[union-attr]
            seekable = fobj.seekable() if hasattr(fobj, "seekable") else True  # type: ignore[union-attr]
        except (OSError, AttributeError, ValueError):
            start, seekable = None, False

        class _Borrowed:
            """The caller's file, rewound for each attempt and never closed by us."""

            def __init__(self) -> None:
                if seekable and start is not None:
                    fobj.seek(start)  # type: ignore[union-attr]

            def __iter__(self) -> Any:
                return iter(lambda: fobj.read(1024 * 1024), b"")  # type: ignore[union-attr]

            def read(self, n: int = -1) -> bytes:
                return fobj.read(n)  # type: ignore[union-attr]

            def __bool__(self) -> bool:
                # requests replaces a falsy body with nothing; an unknown length (0) must not do that.
                return True

            def __len__(self) -> int:
                # Known length: sent with Content-Length; unknown (0): sent chunked.
                try:
                    return max(os.fstat(fobj.fileno()).st_size - (start or 0), 0)  # type: ignore[union-attr]
                except (OSError, AttributeError, ValueError):
                    pass
                if not seekable:
                    return 0
                try:
                    here = fobj.tell()  # type: ignore[union-attr]
                    end = fobj.seek(0, os.SEEK_END)  # type: ignore[union-attr]
                    fobj.seek(here)  # type: ignore[union-attr]
                    return max(end - here, 0)
                except (OSError, AttributeError, ValueError):
                    return 0

        return _Borrowed, seekable
    file_path = Path(os.fspath(source))  # type: ignore[arg-type]
    if not file_path.is_file():
        raise FileNotFoundError(f"no file at {file_path}")
    return (lambda: open(file_path, "rb")), True
