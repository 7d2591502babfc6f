"""What needs the real stack running shares this: the benchmarks (bench/), the fault run
(bench/faults/) and the tests. Free ports, waiting, child processes (gunicorn, Celery
workers and beats, manage.py), a private Redis and throwaway databases.

It imports no application code: it starts processes, given URLs, environments and module
names, so that importing it never configures Django. The one exception, `hooked_celery`,
is not imported by the rest: it is the Celery app (`-A harness.hooked_celery`) of workers
that tests and the fault run start with test-only hooks around the apply; a private
PostgreSQL server (`private_postgres`) is for runs that restart the whole server."""
