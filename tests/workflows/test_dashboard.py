"""The dashboard's side of workflows, over HTTP: the waiting count, a job's parents and
children, and the workflow page's tree."""

from __future__ import annotations

import re

import httpx

from queuekit import NewJob, OnFailure, Parent, Queue, Workflow, chain, group, new_job
from queuekit.api import create_app


def client(queue: Queue) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(queue))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def diamond() -> tuple[tuple[NewJob, NewJob, NewJob, NewJob], Workflow]:
    fetch = new_job("fetch")
    left = new_job("left", after=[fetch])
    right = new_job("right", after=[fetch])
    merge = new_job("merge", after=[left, Parent(right.id, OnFailure.RUN)])
    return (fetch, left, right, merge), group(fetch, left, right, merge).with_id("diamond")


async def test_job_page_shows_parents_and_children(queue: Queue) -> None:
    (fetch, left, _, merge), flow = diamond()
    await queue.enqueue_many(flow)
    async with client(queue) as http:
        page = (await http.get(f"/dashboard/jobs/{merge.id}")).text
        assert 'href="/dashboard/workflows/diamond"' in page
        assert "/static/workflows.css" in page
        parents = page.split("data-parents", 1)[1].split("</ul>", 1)[0]
        assert f'href="/dashboard/jobs/{left.id}"' in parents
        assert "on failure: run" in parents and "on failure: cancel" in parents
        assert "data-children" not in page
        top = (await http.get(f"/dashboard/fragments/jobs/{fetch.id}")).text
        children = top.split("data-children", 1)[1].split("</ul>", 1)[0]
        assert children.count('class="status waiting"') == 2
        assert "data-parents" not in top
        alone = await queue.enqueue("t")
        assert "<h2>Workflow</h2>" not in (await http.get(f"/dashboard/jobs/{alone.id}")).text


async def test_workflow_page_is_a_tree(queue: Queue) -> None:
    (fetch, left, right, merge), flow = diamond()
    await queue.enqueue_many(flow)
    later = chain(*(new_job(f"step{n}") for n in range(12))).with_id("long")
    await queue.enqueue_many(later)
    async with client(queue) as http:
        page = await http.get("/dashboard/workflows/diamond")
        assert page.status_code == 200
        assert 'data-refresh="/dashboard/fragments/workflows/diamond"' in page.text
        nodes = re.findall(r'data-job="([^"]+)" data-depth="(\d+)"', page.text)
        assert nodes == [
            (fetch.id, "0"),
            (left.id, "1"),
            (merge.id, "2"),
            (right.id, "1"),
        ]
        merged = page.text.split(f'data-job="{merge.id}"', 1)[1].split("</li>", 1)[0]
        assert f'also after <a href="/dashboard/jobs/{right.id}"' in merged
        assert "1 pending" in page.text and "3 waiting" in page.text
        deep = (await http.get("/dashboard/fragments/workflows/long")).text
        assert "indent-8" in deep and "indent-9" not in deep and "level 11" in deep
        assert (await http.get("/dashboard/workflows/none")).status_code == 404
        overview = (await http.get("/dashboard/")).text
        assert 'data-count="waiting">14<' in overview
