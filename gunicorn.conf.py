"""gunicorn's settings for the web process (Dockerfile, docker-compose.yml, Procfile.demo).

Read from the environment with the project's strict helpers, so a bad value stops start-up with a
message naming the variable; command-line flags still win over these values.
"""

from gunicorn.glogging import Logger

from voltpark.env import envint, envstr

bind = f"0.0.0.0:{envint('PORT', 8000, minimum=1)}"
workers = envint("GUNICORN_WORKERS", 4, minimum=1)
# Threads (gunicorn's gthread worker): a slow client or a long streaming export holds a thread,
# not a whole process, and the worker's heartbeat does not wait for the request to finish.
threads = envint("GUNICORN_THREADS", 4, minimum=1)
timeout = envint("GUNICORN_TIMEOUT_S", 30, minimum=1)
# An idle keep-alive connection is closed by the client's side (a load balancer's idle timeout is
# 60 s at most on the usual ones), never by gunicorn first: a request sent as gunicorn closes the
# connection (its default waits 2 s) gets a reset and no answer (3 API calls in the soak, reproduced
# with clients idling about the keep-alive). Idle connections wait in the poller, not in a thread.
keepalive = envint("GUNICORN_KEEPALIVE_S", 75, minimum=1)
# X-Forwarded-For/-Proto are believed only from these addresses (the load balancer in front).
forwarded_allow_ips = envstr("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
# The request's id comes from the answer's header, set by core.request_id's middleware; %(M)s is
# the request's time in milliseconds.
access_log_format = 'request_id=%({x-request-id}o)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'


class LineLogger(Logger):
    """gunicorn's logger with the platform's line shape: time, level, logger name, then the message."""

    error_fmt = "%(asctime)s %(levelname)s %(name)s request_id=- %(message)s"
    access_fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    datefmt = None


logger_class = LineLogger
