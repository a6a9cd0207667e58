"""Background jobs (``client.jobs``): dataset profiling today; training and rollouts later."""

from typing import Iterator, List, Optional

from .. import exceptions as exc
from ._base import APIObject, Page, Resource, id_of, poll, seg

#: Job states after which a job never changes again.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class Job(APIObject):
    """A durable job: ``id`` (``job_…``), ``kind``, ``status`` (``queued``, ``running``, ``succeeded``,
    ``failed`` or ``cancelled``), ``progress`` (0…1), ``message``, ``attempts``, ``result``, ``error`` …"""

    @property
    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or was cancelled)."""
        return self.get("status") in TERMINAL_STATUSES

    def refresh(self) -> "Job":
        """The job as it is now."""
        return self._client.jobs.get(self.id)

    def wait(self, timeout: Optional[float] = 600, *, raise_on_failure: bool = True) -> "Job":
        """Waits until the job finishes; see ``JobsResource.wait``."""
        return self._client.jobs.wait(self.id, timeout=timeout, raise_on_failure=raise_on_failure)

    def cancel(self) -> "Job":
        """Asks the server to cancel the job."""
        return self._client.jobs.cancel(self.id)


class JobAttempt(APIObject):
    """One claim of a job by a server: ``attempt``, ``worker``, ``started_at``, ``ended_at``, ``outcome``."""


class JobsResource(Resource):
    """Jobs: look at, wait for and cancel background work."""

    def get(self, job_id: str) -> Job:
        """One job."""
        return self._get(f"/jobs/{seg(job_id)}", Job)

    def list(self, project_id: str, *, limit: Optional[int] = None, page_token: Optional[str] = None) -> Page:
        """The project's jobs: all of them, or one page when ``limit``/``page_token`` is given."""
        return self._list(f"/projects/{seg(project_id)}/jobs", Job, limit=limit, page_token=page_token)

    def iter(self, project_id: str, *, page_size: Optional[int] = None) -> Iterator[Job]:
        """Iterates over every job of the project, fetching pages lazily."""
        return self._iter(f"/projects/{seg(project_id)}/jobs", Job, page_size=page_size)

    def cancel(self, job_id: str, *, idempotency_key: Optional[str] = None) -> Job:
        """Cancels a job: a queued one at once, a running one at its next progress report.
        A job that already finished is a ``ConflictError``."""
        return self._post(f"/jobs/{seg(job_id)}/cancel", Job, idempotency_key=idempotency_key)

    def attempts(self, job_id: str) -> List[JobAttempt]:
        """Every time the job was claimed by a server, and how that attempt ended."""
        return self._get_list(f"/jobs/{seg(job_id)}/attempts", JobAttempt)

    def wait(
        self,
        job_id: str,
        timeout: Optional[float] = 600,
        *,
        poll_interval: float = 0.05,
        raise_on_failure: bool = True,
    ) -> Job:
        """Polls the job until it has finished and returns it.

        Raises ``coreplexml.TimeoutError`` when it has not finished within ``timeout`` seconds
        (``None``: wait forever), and ``JobFailedError`` when it ends ``failed`` or ``cancelled``
        (unless ``raise_on_failure=False``).
        """
        job_id = id_of(job_id)
        job = poll(
            lambda: self.get(job_id),
            lambda j: j.done,
            timeout=timeout,
            what=f"job {job_id}",
            interval=poll_interval,
        )
        if raise_on_failure and job.status != "succeeded":
            raise exc.JobFailedError(
                f"job {job_id} ({job.get('kind')}) ended {job.status}: "
                f"{job.get('error') or job.get('message') or 'no reason given'}",
                job=job,
            )
        return job
