"""The service's tasks: the web app enqueues them, the worker runs them."""

from __future__ import annotations

import queuekit

tasks = queuekit.Tasks()


@tasks.task(queue="emails", max_attempts=5, timeout=30, retry=queuekit.Exponential(base=1, cap=300))
async def send_welcome_email(email: str, name: str) -> dict[str, str]:
    # A real service would call its mail provider here, with a client from the worker's state.
    return {"sent_to": email, "subject": f"Welcome, {name}!"}
