"""The one mechanism for background work: durable job rows, claimed with leases, retried with backoff.

Services enqueue (`queue.enqueue`) inside the caller's transaction; local workers are woken only after that
transaction commits (`db.uow.after_commit`). Workers (`runner.Runner`, threads in `offerloop serve` or in
`offerloop worker` processes on any machine) claim due rows (`lease.claim`, SKIP LOCKED on PostgreSQL), run
the handler registered for the row's kind (`runner.register`), and finish the row under its lease.
"""
