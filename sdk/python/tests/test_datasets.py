"""Dataset upload, profiling, versions, download, and the errors of malformed files."""

import io

import pytest

from coreplexml import ConflictError, NotFoundError, ValidationError


def test_upload_profiles_the_churn_csv(admin, project, fixtures_dir):
    version = admin.datasets.upload(
        project_id=project.id, path=fixtures_dir / "churn.csv", name="churn", description="churn rows"
    )
    assert version.id.startswith("dsv_")
    assert version.status == "ready"
    assert version.version == 1
    assert version.row_count == 600
    assert [c.name for c in version.columns] == [
        "tenure", "monthly_charges", "support_calls", "usage_trend", "churned"
    ]
    assert [c.kind for c in version.columns] == ["numeric"] * 5
    profile = version.profile.to_dict()
    assert len(profile["columns"]) == 5
    first = profile["columns"][0]
    assert first["count"] == 600
    assert "histogram" in first

    job = admin.jobs.get(version.profile_job_id)
    assert job.status == "succeeded"
    assert job.kind == "dataset.profile"
    assert len(admin.jobs.attempts(job.id)) >= 1
    assert job.id in {j.id for j in admin.jobs.list(project.id)}

    dataset = admin.datasets.get(version.dataset_id)
    assert (dataset.name, dataset.description) == ("churn", "churn rows")
    assert dataset.id in {d.id for d in admin.datasets.list(project.id)}


def test_upload_without_waiting_then_wait(admin, project, fixtures_dir):
    version = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn", wait=False)
    assert version.status in ("profiling", "ready")
    ready = version.wait(timeout=30)
    assert ready.status == "ready" and ready.ready
    assert admin.jobs.wait(version.profile_job_id, timeout=30).status == "succeeded"


def test_uploads_of_one_name_are_numbered_versions(admin, project, fixtures_dir):
    v1 = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")
    v2 = admin.datasets.upload(project.id, io.BytesIO(b"a,b\n1,x\n2,y\n"), "churn")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.dataset_id == v2.dataset_id
    assert [v.version for v in admin.datasets.versions(v1.dataset_id)] == [1, 2]
    assert admin.datasets.get_version(v2.id).row_count == 2


def test_download_returns_the_file_byte_for_byte(admin, project, fixtures_dir, tmp_path):
    version = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")
    out = admin.datasets.download(version.id, tmp_path / "copy.csv")
    assert out.read_bytes() == (fixtures_dir / "churn.csv").read_bytes()


@pytest.mark.parametrize(
    "content, line, words",
    [
        (b"a,b\n1,2\n3\n", 3, "fields"),
        (b"a,b\n1,2\n\xff\xfe,3\n", 3, "UTF-8"),
        (b"", None, "empty"),
        (b"a,b\n", None, "header"),
    ],
    ids=["ragged row", "bad utf-8", "empty file", "header only"],
)
def test_malformed_csv_is_a_validation_error_naming_the_line(admin, project, content, line, words):
    with pytest.raises(ValidationError) as info:
        admin.datasets.upload(project.id, io.BytesIO(content), name="broken")
    err = info.value
    assert err.status == 422
    assert err.code == "validation_failed"
    assert words.lower() in err.message.lower()
    if line is not None:
        assert f"line {line}" in err.message
        assert err.details.get("line") == line
    # Nothing half-stored: the dataset does not exist.
    assert "broken" not in {d.name for d in admin.datasets.list(project.id)}


def test_upload_of_a_missing_file_fails_before_any_request(admin, project, tmp_path):
    with pytest.raises(FileNotFoundError):
        admin.datasets.upload(project.id, tmp_path / "nope.csv", "nope")


def test_unknown_dataset_version_is_not_found(admin):
    with pytest.raises(NotFoundError):
        admin.datasets.get_version("dsv_doesnotexist")


class _Unseekable(io.RawIOBase):
    """A stream of unknown length (like a pipe): sent chunked, never rewound."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buf):
        chunk = self._data.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)


def test_upload_from_a_stream_of_unknown_length(admin, project, fixtures_dir):
    data = (fixtures_dir / "churn.csv").read_bytes()
    version = admin.datasets.upload(project.id, _Unseekable(data), "piped")
    assert version.row_count == 600
    assert version.size_bytes == len(data)


def test_upload_from_an_open_file_leaves_it_open(admin, project, fixtures_dir):
    with open(fixtures_dir / "churn.csv", "rb") as f:
        version = admin.datasets.upload(project.id, f, "from-file")
        assert not f.closed
    assert version.row_count == 600


def test_a_finished_job_cannot_be_cancelled(admin, project, fixtures_dir):
    version = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")
    job = admin.jobs.get(version.profile_job_id)
    assert job.done and job.wait().status == "succeeded"
    with pytest.raises(ConflictError) as info:
        job.cancel()
    assert "succeeded" in info.value.message
