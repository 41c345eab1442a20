"""The Celery application; tasks live in each app's tasks.py."""

import logging.config
import os
from contextvars import Token
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, celeryd_init, setup_logging, task_postrun, task_prerun

from core.request_id import current_request_id, request_id_bind, request_id_unbind

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voltpark.settings")

app = Celery("voltpark")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The tokens of the task ids bound in this process, to put back what was bound before.
_bound: dict[str, Token[str | None]] = {}


@setup_logging.connect
def _log_as_django(**_: Any) -> None:
    """Workers and beat log through settings.LOGGING (time, level, logger, request id), not Celery's way."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@task_prerun.connect
def _bind_task_id(task_id: str, **_: Any) -> None:
    """A task's log lines and audit rows carry its id; an eager task keeps the id of its request."""
    if current_request_id() is None:
        _bound[task_id] = request_id_bind(task_id)


@task_postrun.connect
def _unbind_task_id(task_id: str, **_: Any) -> None:
    token = _bound.pop(task_id, None)
    if token is not None:
        request_id_unbind(token)


@celeryd_init.connect
def _note_named_queues(instance: Any, options: dict[str, Any], **_: Any) -> None:
    instance.voltpark_named_queues = bool(options.get("queues"))


@celeryd_after_setup.connect
def _consume_every_region(instance: Any, **_: Any) -> None:
    """A worker started without -Q (a laptop, the demo, a test) also consumes every region's run-time
    queues, as the database lists them when it starts; production names its queues with -Q."""
    if getattr(instance, "voltpark_named_queues", True):
        return
    from django.db import DatabaseError, connection

    from clusters.selectors.runtime import region_queues

    try:
        queues = region_queues()
    except DatabaseError as exc:
        logging.getLogger(__name__).warning(
            "no region queues consumed: the database did not answer (%s)", exc
        )
        return
    finally:
        connection.close()
    for queue in queues:
        instance.app.amqp.queues.select_add(queue)
