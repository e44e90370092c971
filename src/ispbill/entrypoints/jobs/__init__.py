"""Background work (docs/architecture.md, "Runtime").

``tasks.py`` holds the task functions (each calls use cases); ``queue_worker.py`` runs them as
procrastinate jobs on PostgreSQL; ``scheduler.py`` calls them on their periods in-process on
SQLite; ``background.py`` is what ``ispbill serve`` and ``ispbill worker`` start. The one-pass
senders ``coa_sender.py`` and ``mail_sender.py`` remain for ``ispbill outbox run`` and
``ispbill notifications send``; like the other entry points they call use cases and never the
ORM.
"""
