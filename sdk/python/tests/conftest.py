"""Test harness: one real `coreplex serve` per test session, on a free port, in a temporary data folder.

The binary is `$COREPLEX_BIN`, else `target/debug/coreplex` of this repository (build it with
`cargo build -p coreplex-cli`). The server's own log goes to `server.log` in its data folder and is shown
when it fails to start. Each test gets its own project, so tests never see each other's data.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from coreplexml import CorePlexClient

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "models"
START_TIMEOUT_SECS = 60.0

CHURN_FEATURES = ["tenure", "monthly_charges", "support_calls", "usage_trend"]


class Server:
    """A running `coreplex serve`: its URL, bootstrap admin key and data folder."""

    def __init__(self, proc: subprocess.Popen, url: str, admin_key: str, data_dir: Path, log_path: Path):
        self.proc = proc
        self.url = url
        self.admin_key = admin_key
        self.data_dir = data_dir
        self.log_path = log_path
        self.stdout: List[str] = []

    def client(self, api_key: Optional[str] = None, **kwargs) -> CorePlexClient:
        return CorePlexClient(base_url=self.url, api_key=api_key or self.admin_key, **kwargs)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def _binary() -> Path:
    env = os.environ.get("COREPLEX_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "coreplex"
    if not path.is_file():
        pytest.fail(
            f"the coreplex server binary is missing at {path}; build it with "
            f"`cargo build -p coreplex-cli` or point COREPLEX_BIN at it",
            pytrace=False,
        )
    return path


def _start_server(binary: Path, data_dir: Path) -> Server:
    log_path = data_dir.parent / "server.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
        cwd=REPO_ROOT,  # the server finds .tools/onnxruntime/ relative to here
        stdout=subprocess.PIPE,
        stderr=log_file,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    log_file.close()
    lines: List[str] = []
    found = {}
    ready = threading.Event()

    def read_stdout() -> None:
        # Keep draining stdout for the server's whole life so it can never block on a full pipe.
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "listening on " in line and "url" not in found:
                found["url"] = line.split("listening on ", 1)[1].strip()
            if "admin API key" in line and "key" not in found:
                found["key"] = line.rsplit(":", 1)[1].strip()
            if "url" in found and "key" in found:
                ready.set()
        ready.set()

    threading.Thread(target=read_stdout, name="coreplex-stdout", daemon=True).start()
    ready.wait(START_TIMEOUT_SECS)
    if "key" not in found and (data_dir / "admin.key").is_file():
        found["key"] = (data_dir / "admin.key").read_text().strip()
    if "url" not in found or "key" not in found:
        proc.kill()
        proc.wait(10)
        log = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
        pytest.fail(
            f"`{binary} serve` did not print its URL and admin key within {START_TIMEOUT_SECS:g}s "
            f"(exit code {proc.returncode}).\nstdout:\n" + "\n".join(lines) + f"\nlog:\n{log}",
            pytrace=False,
        )
    server = Server(proc, found["url"], found["key"], data_dir, log_path)
    server.stdout = lines
    return server


def _stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = _binary()
    tmp = Path(tempfile.mkdtemp(prefix="coreplexml-sdk-tests-"))
    srv = _start_server(binary, tmp / "data")
    try:
        yield srv
    finally:
        _stop_server(srv)
        if os.environ.get("COREPLEX_KEEP_TEST_DATA"):
            print(f"server data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[CorePlexClient]:
    """A client with the bootstrap (instance and organization) admin key."""
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def admin_subject(server: Server, admin: CorePlexClient) -> str:
    """The subject the bootstrap admin key acts as (what the audit log and transitions name)."""
    (key,) = [k for k in admin.keys.list() if server.admin_key.startswith(k.prefix)]
    return key.subject


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project(admin: CorePlexClient):
    """A fresh project of the default organization."""
    return admin.projects.create(name=unique("test"), description="created by the SDK tests")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def register_logreg(admin: CorePlexClient, project):
    """Registers logreg.onnx under a name in the test's project (default name: `churn`)."""

    def register(name: str = "churn", client: Optional[CorePlexClient] = None, **kwargs):
        return (client or admin).models.register(
            project_id=project.id,
            name=name,
            artifact_path=FIXTURES / "logreg.onnx",
            task="binary_classification",
            feature_names=CHURN_FEATURES,
            **kwargs,
        )

    return register


@pytest.fixture
def register_model(admin: CorePlexClient, project):
    """Registers a fixture model (`logreg`, `forest`, `hgb`, `weak`: binary classifiers on the churn
    features) in the test's project under its file name, or `name`."""

    def register(fixture: str = "logreg", name: Optional[str] = None, project_id: Optional[str] = None, **kwargs):
        return admin.models.register(
            project_id=project_id or project.id,
            name=name or fixture,
            artifact_path=FIXTURES / f"{fixture}.onnx",
            task="binary_classification",
            feature_names=CHURN_FEATURES,
            **kwargs,
        )

    return register


def churn_rows(n: Optional[int] = None):
    """Rows of churn.csv as ({feature: value}, churned) pairs."""
    import csv

    with open(FIXTURES / "churn.csv", newline="") as f:
        out = []
        for rec in csv.DictReader(f):
            out.append(({k: float(rec[k]) for k in CHURN_FEATURES}, int(rec["churned"])))
            if n is not None and len(out) >= n:
                break
    return out
