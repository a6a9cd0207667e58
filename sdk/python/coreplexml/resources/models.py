"""The model registry (``client.models``): versions, lineage, lifecycle, artifacts."""

import io
import json as _json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from ._base import APIObject, Page, PathLike, Resource, id_of, seg

#: Lifecycle states of a registered model.
STATUSES = ("candidate", "staging", "production", "archived")
#: Tasks a model can have.
TASKS = ("binary_classification", "multiclass_classification", "regression")


class Model(APIObject):
    """A registered model version: ``id`` (``model_…``), ``project_id``, ``name``, ``version``, ``task``,
    ``status``, ``input_schema``, ``output_schema``, ``model_card``, ``tags``, ``lineage``, ``sha256``,
    ``size_bytes``, ``created_at``, ``created_by``, ``updated_at``."""

    def refresh(self) -> "Model":
        """The model as it is now."""
        return self._client.models.get(self.id)

    def transition(self, status: str, reason: str = "") -> "Model":
        """Moves this model to ``status``; see ``ModelsResource.transition``."""
        return self._client.models.transition(self.id, status, reason)

    def download(self, path: PathLike) -> Path:
        """Downloads the ONNX file to ``path``."""
        return self._client.models.download(self.id, path)


class Transition(APIObject):
    """A lifecycle transition: ``from_status``, ``to_status``, ``actor``, ``at``, ``reason``."""


class Promotion(APIObject):
    """A deployment of the model: ``deployment_id``, ``endpoint``, ``strategy``, ``started_at``,
    ``ended_at``, ``outcome`` (``in_progress``, ``promoted``, ``rolled_back``, ``aborted``,
    ``shadow_compared``), ``detail``."""


class ModelsResource(Resource):
    """The model registry."""

    def register(
        self,
        project_id: str,
        name: str,
        artifact_path: PathLike,
        task: str,
        model_card: str = "",
        tags: Optional[Mapping[str, Any]] = None,
        dataset_version_id: Optional[str] = None,
        experiment: Optional[Mapping[str, Any]] = None,
        hyperparameters: Optional[Mapping[str, Any]] = None,
        validation_metrics: Optional[Mapping[str, float]] = None,
        training_duration_secs: Optional[float] = None,
        parent_model_id: Optional[str] = None,
        feature_names: Optional[Sequence[str]] = None,
        class_labels: Optional[Sequence[Any]] = None,
        input_example: Optional[Mapping[str, Any]] = None,
        *,
        source: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Model:
        """Registers an ONNX file as the next version of model ``name`` in the project.

        The server loads the graph with ONNX Runtime, reads its input schema and makes a test prediction
        before storing anything; a file it cannot load is a ``ValidationError`` with the loader's reason.
        The new version starts as ``candidate``; versions count up per name within the project.

        Args:
            task: ``binary_classification``, ``multiclass_classification`` or ``regression``.
            model_card: free text describing the model.
            tags: string labels, e.g. ``{"team": "growth"}`` (values are sent as strings).
            dataset_version_id, experiment, hyperparameters, validation_metrics,
            training_duration_secs, parent_model_id, source: lineage.
            feature_names: names of the columns of a single ``[batch, n]`` input, in order (needed for
                models that take one float matrix).
            class_labels: class labels in the order of the probability columns.
            input_example: a row to make the test prediction with.
        """
        file_path = Path(os.fspath(artifact_path))
        if not file_path.is_file():
            raise FileNotFoundError(f"no model file at {file_path}")
        meta: Dict[str, Any] = {"name": name, "task": task}
        if model_card:
            meta["model_card"] = model_card
        if tags is not None:
            meta["tags"] = _string_tags(tags)
        lineage = _lineage(
            dataset_version_id=id_of(dataset_version_id),
            experiment=experiment,
            hyperparameters=hyperparameters,
            validation_metrics=validation_metrics,
            training_duration_secs=training_duration_secs,
            parent_model_id=id_of(parent_model_id),
            source=source,
        )
        if lineage is not None:
            meta["lineage"] = lineage
        if feature_names is not None:
            meta["feature_names"] = [str(f) for f in feature_names]
        if class_labels is not None:
            meta["class_labels"] = [str(c) for c in class_labels]
        if input_example is not None:
            meta["input_example"] = dict(input_example)
        metadata = _json.dumps(meta).encode("utf-8")
        boundary = f"coreplexml-{uuid.uuid4().hex}"
        return self._post(
            f"/projects/{seg(project_id)}/models",
            Model,
            data=lambda: _MultipartStream(boundary, metadata, file_path),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            idempotency_key=idempotency_key,
            timeout=(self._client.timeout, self._client.upload_timeout),
        )

    def get(self, model_id: str) -> Model:
        """One model version."""
        return self._get(f"/models/{seg(model_id)}", Model)

    def list(
        self,
        project_id: str,
        name: Optional[str] = None,
        status: Optional[str] = None,
        *,
        limit: Optional[int] = None,
        page_token: Optional[str] = None,
    ) -> Page:
        """The project's model versions, optionally only those named ``name`` and/or in ``status``."""
        return self._list(
            f"/projects/{seg(project_id)}/models", Model, {"name": name, "status": status},
            limit=limit, page_token=page_token,
        )

    def iter(
        self,
        project_id: str,
        name: Optional[str] = None,
        status: Optional[str] = None,
        *,
        page_size: Optional[int] = None,
    ) -> Iterator[Model]:
        """Iterates over the project's model versions, fetching pages lazily."""
        return self._iter(
            f"/projects/{seg(project_id)}/models", Model, {"name": name, "status": status},
            page_size=page_size,
        )

    def update(
        self, model_id: str, model_card: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None
    ) -> Model:
        """Changes a version's model card and/or tags (``tags`` replaces them). File, schema and lineage
        never change."""
        body: Dict[str, Any] = {}
        if model_card is not None:
            body["model_card"] = model_card
        if tags is not None:
            body["tags"] = _string_tags(tags)
        return self._patch(f"/models/{seg(model_id)}", Model, body)

    def transition(
        self, model_id: str, status: str, reason: str = "", *, idempotency_key: Optional[str] = None
    ) -> Model:
        """Moves a model through its lifecycle and returns it.

        Allowed: candidate→staging, candidate→archived, staging→production, staging→candidate,
        staging→archived, production→archived, archived→staging. Anything else is a ``ConflictError``.
        Promoting to ``production`` archives the version of the same name that was there.
        """
        return self._post(
            f"/models/{seg(model_id)}/transitions", Model, {"status": status, "reason": reason or ""},
            idempotency_key=idempotency_key,
        )

    def transitions(self, model_id: str) -> List[Transition]:
        """The model's lifecycle history, oldest first, each with actor, time and reason."""
        return self._get_list(f"/models/{seg(model_id)}/transitions", Transition)

    def promotions(self, model_id: str) -> List[Promotion]:
        """Every deployment of this model: endpoint, strategy, start, end and outcome."""
        return self._get_list(f"/models/{seg(model_id)}/promotions", Promotion)

    def download(self, model_id: str, path: PathLike) -> Path:
        """Streams the registered ONNX file, byte for byte, to ``path`` (a file, or a folder to use the
        server's file name). Returns the path written."""
        return self._download(f"/models/{seg(model_id)}/artifact", path)


def _string_tags(tags: Mapping[str, Any]) -> Dict[str, str]:
    if not isinstance(tags, Mapping):
        raise TypeError("tags must be a mapping of names to values, e.g. {'team': 'growth'}")
    return {str(k): v if isinstance(v, str) else _json.dumps(v) if isinstance(v, (dict, list)) else str(v)
            for k, v in tags.items()}


def _lineage(**fields: Any) -> Optional[Dict[str, Any]]:
    if all(v is None for v in fields.values()):
        return None
    lineage: Dict[str, Any] = {
        "experiment": dict(fields.pop("experiment") or {}),
        "hyperparameters": dict(fields.pop("hyperparameters") or {}),
    }
    if fields.get("validation_metrics") is not None:
        fields["validation_metrics"] = {str(k): float(v) for k, v in fields["validation_metrics"].items()}
    lineage.update({k: v for k, v in fields.items() if v is not None})
    return lineage


class _MultipartStream:
    """A ``multipart/form-data`` body (``metadata`` JSON part, then the ``file`` part) read from disk as
    it is sent, so a large model is never held in memory. Its length is known up front."""

    def __init__(self, boundary: str, metadata: bytes, file_path: Path) -> None:
        filename = file_path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="metadata"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode() + metadata + (
            f"\r\n--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8")
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._file = open(file_path, "rb")
        size = os.fstat(self._file.fileno()).st_size
        self._parts: List[Any] = [io.BytesIO(head), self._file, io.BytesIO(tail)]
        self._len = len(head) + size + len(tail)

    def __len__(self) -> int:
        return self._len

    def read(self, n: int = -1) -> bytes:
        out = []
        while self._parts and (n < 0 or n > 0):
            chunk = self._parts[0].read(n if n > 0 else -1)
            if not chunk:
                self._parts.pop(0)
                continue
            out.append(chunk)
            if n > 0:
                n -= len(chunk)
        return b"".join(out)

    def __iter__(self) -> Iterable[bytes]:
        return iter(lambda: self.read(1024 * 1024), b"")

    def close(self) -> None:
        self._file.close()
