"""The queues between :mod:`dumpcodec.dump`'s reader threads and its writer.

Each reader puts a table's blocks into the table's queue (one queue for all tables
when a single reader takes them in order); the writer takes them table by table.
What the readers may hold ahead of the writer is bounded in bytes, not in tables:
thousands of small tables would otherwise make a reader wait, and be woken, for each
one (three times the context switches at 10,000 tables), while tables of up to a
queue's blocks would never stop it at all (everything read ahead of a slow writer).
"""
from __future__ import annotations

import queue
import threading
from typing import Any

from .errors import DumpError


class TableQueues(dict):
    """A table's queue, made when a worker or the writer first asks for it (not one
    per table up front: thousands of tables); ``shared``: one reader takes the tables
    in order, and they all go through one queue.  Bytes queued are at most ``budget``
    (an item counted as at least ITEM_COST) besides, with several readers, the table
    being written (at most ``maxsize`` items a reader): a reader with more waits, and
    is woken when half is free, so that small tables do not make it wake for each one."""

    ITEM_COST = 4096

    def __init__(self, shared: bool = False, budget: int = 8 << 20, maxsize: int = 8):
        super().__init__()
        self.shared = queue.Queue() if shared else None
        self.budget, self.maxsize, self.held, self.writing = budget, maxsize, 0, 0
        self._cv = threading.Condition()
        self._waiting = False

    def __missing__(self, key: int) -> "queue.Queue":
        if self.shared is not None:
            return self.shared
        return self.setdefault(key, queue.Queue(maxsize=self.maxsize))   # atomic

    @classmethod
    def cost(cls, item: Any) -> int:
        parts = item if type(item) is tuple else (item,)
        return max(cls.ITEM_COST, sum(len(x) for x in parts if type(x) is bytes))

    def take(self, idx: int, item: Any, stop: threading.Event) -> None:
        n = self.cost(item)
        with self._cv:
            # one reader in table order (shared) holds only what the writer is about to
            # take: it always waits; with several, the one on the table being written
            # never does (its table's own queue bounds it), or it could wait for ever
            # on tables the writer does not take before its own
            while self.held and self.held + n > self.budget and (
                    self.shared is not None or idx != self.writing):
                if stop.is_set():
                    raise DumpError("dump aborted")
                self._waiting = True
                self._cv.wait(0.5)
            self.held += n

    def give(self, item: Any) -> None:
        with self._cv:
            self.held -= self.cost(item)
            if self._waiting and self.held <= self.budget // 2:
                self._waiting = False
                self._cv.notify_all()

    def write_next(self, idx: int) -> None:
        with self._cv:
            self.writing = idx
            if self._waiting:
                self._cv.notify_all()
