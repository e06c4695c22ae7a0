"""A toy daemon over the ``messages`` table, to test the framework without any domain logic.

Work items are messages of type ``work``; processing one writes a ``done`` message naming
it (so a test can count how often each item was processed) and, with the queue consuming,
deletes the work row in the same transaction.  A payload ``fail`` raises after writing, to
show the write is rolled back.  ``TOY_ITEM_SECONDS`` slows each item down (kill tests).
"""

from __future__ import annotations

import os
import time
from collections import Counter

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Message
from datamgmt.core.workqueue import WorkQueue
from datamgmt.daemons.common import Item, QueueDaemon, Runner

WORK = WorkQueue(
    name="toy",
    model=Message,
    filters=lambda: (Message.event_type == "work",),
    order_by=lambda: (Message.id,),
    columns=lambda: (Message.payload,),
)


class ToyDaemon(QueueDaemon):
    name = "toy"
    queue = WORK
    consume = True

    def items(self, rows):
        return [Item([(row_id,)], (row_id, payload)) for row_id, payload in rows]

    def process(self, session: Session, payload: tuple[int, str]) -> None:
        row_id, text = payload
        session.execute(insert(Message).values(event_type="done", payload=str(row_id)))
        time.sleep(float(os.environ.get("TOY_ITEM_SECONDS", "0")))
        if text == "fail":
            raise RuntimeError("toy failure")


def add_work(session: Session, count: int, payload: str = "ok") -> None:
    session.execute(insert(Message), [{"event_type": "work", "payload": payload} for _ in range(count)])
    session.commit()


def done_counts(session: Session) -> Counter[str]:
    rows = session.execute(
        select(Message.payload, func.count()).where(Message.event_type == "done").group_by(Message.payload)
    )
    return Counter({payload: n for payload, n in rows})


def remaining_work(session: Session) -> int:
    return session.scalar(select(func.count()).where(Message.event_type == "work"))


def main() -> None:
    """``python -m tests.unit.daemons.toy [--threads N] [--batch B] [--run-once] [--metrics-port P]``."""
    import argparse

    from datamgmt.daemons import logs

    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--run-once", action="store_true")
    parser.add_argument("--metrics-port", type=int)
    args = parser.parse_args()
    logs.configure("info")
    Runner(
        ToyDaemon, threads=args.threads, batch=args.batch, once=args.run_once, metrics_port=args.metrics_port
    ).run()


if __name__ == "__main__":
    main()
