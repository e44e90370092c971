"""The job engine on PostgreSQL: procrastinate (pinned in pyproject.toml), kept behind this
package so the rest of ispbill names tasks, never the library.

``procrastinate_app`` builds the procrastinate ``App`` for a database URL and installs its
schema (``ispbill init``, once: applying it twice raises). ``job_deferral`` defers jobs with
SQL on the caller's own connection, so a job is deferred in the same transaction as the state
change that causes it: nothing runs before that commit and nothing is lost after it.
"""
