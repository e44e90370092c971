"""Long-running jobs: the loops that drain the outboxes until they are stopped.

Each job repeats one batch use case (``use_cases/network/enforcement.process_due`` for the CoA
commands, ``use_cases/notifications/mail_outbox.process_due`` for customer e-mail) and, when
nothing is due, waits for a NOTIFY on PostgreSQL or the poll interval (``waiting.Waiter``). The
command line starts them (``ispbill serve``, ``ispbill outbox run``, ``ispbill notifications
send``); like the other entry points they call use cases and never the ORM.
"""
