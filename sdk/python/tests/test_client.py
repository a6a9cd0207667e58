"""Client behaviour that needs no real server: retries, back-off, connection errors, objects."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import coreplexml
from coreplexml import (
    APIObject,
    ConnectionError,
    CorePlexClient,
    CorePlexError,
    ServerError,
    ValidationError,
)


class FakeServer:
    """Answers each request with the next scripted (status, body) and records what it got."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload = fake.script.pop(0) if fake.script else (200, {"ok": True})
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    servers = []

    def make(*script):
        s = FakeServer(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def client_for(fake_server, **kw):
    kw.setdefault("backoff_factor", 0.001)
    return CorePlexClient(base_url=fake_server.url, api_key="cpx_test", **kw)


UNAVAILABLE = {"error": {"code": "unavailable", "message": "try again", "details": {}}}


def test_post_is_retried_on_503_with_the_same_idempotency_key(fake):
    srv = fake((503, UNAVAILABLE), (502, b"bad gateway"), (201, {"id": "proj_1", "name": "x"}))
    project = client_for(srv).projects.create(name="x")
    assert project.id == "proj_1"
    assert len(srv.requests) == 3
    keys = {r[2].get("Idempotency-Key") for r in srv.requests}
    assert len(keys) == 1 and None not in keys
    assert all(r[2]["Authorization"] == "Bearer cpx_test" for r in srv.requests)


def test_each_post_call_gets_its_own_idempotency_key(fake):
    srv = fake((201, {"id": "a"}), (201, {"id": "b"}))
    client = client_for(srv)
    client.projects.create(name="a")
    client.projects.create(name="b")
    assert srv.requests[0][2]["Idempotency-Key"] != srv.requests[1][2]["Idempotency-Key"]


def test_retries_stop_after_max_retries(fake):
    srv = fake(*[(503, UNAVAILABLE)] * 10)
    with pytest.raises(ServerError) as info:
        client_for(srv, max_retries=2).projects.get("proj_1")
    assert len(srv.requests) == 3
    assert info.value.status == 503 and info.value.code == "unavailable"


def test_a_500_is_not_retried(fake):
    srv = fake((500, {"error": {"code": "internal", "message": "boom", "details": {}}}), (200, {}))
    with pytest.raises(ServerError) as info:
        client_for(srv).projects.get("proj_1")
    assert len(srv.requests) == 1
    assert info.value.code == "internal"


def test_patch_is_not_retried_on_503(fake):
    srv = fake((503, UNAVAILABLE), (200, {"id": "proj_1"}))
    with pytest.raises(ServerError):
        client_for(srv).projects.update("proj_1", name="y")
    assert len(srv.requests) == 1


def test_a_4xx_is_raised_at_once_with_its_details(fake):
    body = {"error": {"code": "validation_failed", "message": "name: must not be empty", "details": {"field": "name"}}}
    srv = fake((422, body))
    with pytest.raises(ValidationError) as info:
        client_for(srv).projects.create(name="")
    assert len(srv.requests) == 1
    err = info.value
    assert (err.status, err.code, err.message, err.details) == (422, "validation_failed", "name: must not be empty", {"field": "name"})


def test_an_error_without_a_json_body_still_has_a_message(fake):
    srv = fake((404, b"no route"))
    with pytest.raises(coreplexml.NotFoundError) as info:
        client_for(srv).projects.get("x")
    assert info.value.message == "no route"
    assert info.value.code is None


def test_an_unreachable_server_is_a_connection_error_after_retries(monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    sleeps = []
    monkeypatch.setattr("coreplexml.client.time.sleep", sleeps.append)
    client = CorePlexClient(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=3, timeout=2)
    with pytest.raises(ConnectionError) as info:
        client.projects.list()
    assert isinstance(info.value, CorePlexError)
    assert str(port) in info.value.message
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[2]  # exponential back-off


def test_query_parameters_skip_none_and_format_times(fake):
    import datetime as dt

    srv = fake((200, {"items": [], "next_page_token": None}))
    client_for(srv).audit.list(project_id="proj_1", since=dt.datetime(2026, 1, 2, 3, 4, 5), limit=10)
    path = srv.requests[0][1]
    assert path.startswith("/api/v1/audit?")
    assert "project_id=proj_1" in path and "limit=10" in path
    assert "since=2026-01-02T03%3A04%3A05Z" in path
    assert "actor" not in path and "page_token" not in path


def test_list_without_limit_follows_every_page(fake):
    srv = fake(
        (200, {"items": [{"id": "proj_1"}], "next_page_token": "t1"}),
        (200, {"items": [{"id": "proj_2"}], "next_page_token": None}),
    )
    projects = client_for(srv).projects.list()
    assert [p.id for p in projects] == ["proj_1", "proj_2"]
    assert "page_token=t1" in srv.requests[1][1]


def test_ids_in_paths_are_quoted(fake):
    srv = fake((204, b""))
    client_for(srv).projects.remove_member("proj_1", "ana/../x y")
    assert srv.requests[0][1] == "/api/v1/projects/proj_1/members/ana%2F..%2Fx%20y"


def test_objects_give_attribute_access_and_plain_dicts():
    obj = APIObject({"id": "model_1", "lineage": {"hyperparameters": {"C": 1}}, "tags": {}, "items": [{"a": 1}]})
    assert obj.id == obj["id"] == obj.get("id") == "model_1"
    assert obj.lineage.hyperparameters.C == 1
    assert obj.items[0].a == 1
    assert obj.get("missing", 5) == 5
    assert "lineage" in obj
    with pytest.raises(AttributeError):
        obj.missing
    with pytest.raises(AttributeError):
        obj.id = "other"
    d = obj.to_dict()
    d["lineage"]["hyperparameters"]["C"] = 2
    assert obj.lineage.hyperparameters.C == 1
    assert obj == {"id": "model_1", "lineage": {"hyperparameters": {"C": 1}}, "tags": {}, "items": [{"a": 1}]}
    assert "model_1" in repr(obj)


def test_waiting_for_a_failed_job_raises_job_failed(fake):
    job = {"id": "job_1", "kind": "dataset.profile", "status": "running", "error": None, "message": ""}
    failed = dict(job, status="failed", error="disk full")
    srv = fake((200, job), (200, failed))
    with pytest.raises(coreplexml.JobFailedError) as info:
        client_for(srv).jobs.wait("job_1", timeout=10, poll_interval=0.001)
    assert "disk full" in info.value.message
    assert info.value.job.status == "failed"


def test_waiting_too_long_raises_timeout(fake):
    job = {"id": "job_1", "kind": "dataset.profile", "status": "running"}
    srv = fake(*[(200, job)] * 200)
    with pytest.raises(coreplexml.TimeoutError) as info:
        client_for(srv).jobs.wait("job_1", timeout=0.05, poll_interval=0.01)
    assert isinstance(info.value, TimeoutError)  # also the built-in
    assert "job_1" in info.value.message


def test_a_failed_profile_is_raised_by_upload(fake, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_bytes(b"a\n1\n")
    version = {"id": "dsv_1", "status": "profiling", "error": None}
    srv = fake((201, version), (200, dict(version, status="failed", error="profile crashed")))
    with pytest.raises(coreplexml.JobFailedError) as info:
        client_for(srv).datasets.upload("proj_1", csv, "d")
    assert "profile crashed" in info.value.message
    method, path, headers, body = srv.requests[0]
    assert (method, headers["Content-Type"], body) == ("POST", "text/csv", b"a\n1\n")
    assert path.startswith("/api/v1/projects/proj_1/datasets?") and "name=d" in path


def test_register_sends_metadata_and_file_as_multipart(fake, tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07fake-onnx")
    srv = fake((201, {"id": "model_1", "version": 1}))
    client_for(srv).models.register(
        "proj_1", "churn", onnx, "regression", tags={"n": 1}, hyperparameters={"depth": 3},
        feature_names=["a"],
    )
    _, path, headers, body = srv.requests[0]
    assert path == "/api/v1/projects/proj_1/models"
    boundary = headers["Content-Type"].split("boundary=")[1]
    parts = body.split(f"--{boundary}".encode())
    meta = json.loads(parts[1].split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0])
    assert meta == {
        "name": "churn", "task": "regression", "tags": {"n": "1"}, "feature_names": ["a"],
        "lineage": {"experiment": {}, "hyperparameters": {"depth": 3}},
    }
    assert b'name="file"; filename="m.onnx"' in parts[2]
    assert parts[2].endswith(b"\r\n\r\n\x08\x07fake-onnx\r\n")
    assert int(headers["Content-Length"]) == len(body)
