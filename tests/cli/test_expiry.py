"""`queuekit enqueue --expires-at / --expires-in`: the expiry stored, bad ones refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from .test_cli import fails, ok, ok_json


def test_enqueue_with_an_expiry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    absolute = ok_json("enqueue", "t", "--expires-at", "2030-01-01T09:00:00+01:00", url=url)
    assert absolute["expires_at"] == "2030-01-01T08:00:00+00:00"
    relative = ok_json("enqueue", "t", "--delay", "60", "--expires-in", "3600", url=url)
    created = datetime.fromisoformat(relative["created_at"])
    expires = datetime.fromisoformat(relative["expires_at"])
    assert abs(expires - created - timedelta(hours=1)) < timedelta(milliseconds=1)
    plain = ok_json("enqueue", "t", url=url)
    assert plain["expires_at"] is None
    shown = ok("jobs", "show", absolute["id"], url=url)
    assert "expires_at" in shown and "2030-01-01" in shown


def test_enqueue_refuses_a_bad_expiry_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert "timezone-aware" in fails("enqueue", "t", "--expires-at", "2030-01-01T09:00", url=url)
    assert "expires_in" in fails("enqueue", "t", "--expires-in", "-5", url=url)
    assert "not after the delay" in fails(
        "enqueue", "t", "--delay", "60", "--expires-in", "30", url=url
    )
    assert "not after run_at" in fails(
        "enqueue",
        "t",
        "--run-at",
        "2030-01-01T09:00:00Z",
        "--expires-at",
        "2030-01-01T08:00:00Z",
        url=url,
    )
    assert ok_json("jobs", "list", url=url)["jobs"] == []
