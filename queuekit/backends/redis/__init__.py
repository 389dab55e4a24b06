"""Redis (redis-py): `RedisBackend`, jobs on a server, a Cluster or behind Sentinel."""

from .backend import RedisBackend

__all__ = ["RedisBackend"]
