"""A FastAPI app that enqueues typed jobs from its handlers and runs their worker in its lifespan.

Run: QUEUEKIT_URL=sqlite:///fastapi_app.db uvicorn examples.fastapi_app:app
     curl -X POST localhost:8000/word-counts -H 'content-type: application/json' \
          -d '{"text": "to be or not to be"}'
     curl localhost:8000/jobs/JOB_ID
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel

import queuekit
from queuekit.fastapi import QueueDep, lifespan

tasks = queuekit.Tasks()


@tasks.task(max_attempts=3, timeout=30)
async def count_words(text: str) -> dict[str, int]:
    return dict(Counter(text.split()))


class Text(BaseModel):
    text: str


class Enqueued(BaseModel):
    job_id: str


class JobState(BaseModel):
    status: queuekit.JobStatus
    result: Any
    attempts: int


router = APIRouter()


@router.post("/word-counts", status_code=202)
async def request_word_count(body: Text, queue: QueueDep) -> Enqueued:
    # mypy checks these arguments against count_words' signature.
    job = await count_words.enqueue(queue, text=body.text)
    return Enqueued(job_id=job.id)


@router.get("/jobs/{job_id}")
async def job_state(job_id: str, queue: QueueDep) -> JobState:
    try:
        job = await queue.get_job(job_id)
    except queuekit.JobNotFoundError:
        raise HTTPException(status_code=404, detail="no such job") from None
    return JobState(status=job.status, result=job.result, attempts=job.attempts)


def create_app(url: str) -> FastAPI:
    """The app on the queue at `url`, with a worker for `tasks` running while it serves."""
    queue = queuekit.connect(url)
    app = FastAPI(lifespan=lifespan(queue, queuekit.Worker(queue, tasks)))
    app.include_router(router)
    return app


app = create_app(os.environ.get("QUEUEKIT_URL", "sqlite:///fastapi_app.db"))
