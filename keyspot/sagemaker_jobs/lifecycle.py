"""A SageMaker training or processing job, from CreateXJob to a terminal status.

`follow` creates the job, prints its status as it changes and its CloudWatch
logs as they come, and returns DescribeXJob's answer once it is Completed.
A job that fails or is stopped raises JobError with SageMaker's reason and
what to do. Ctrl-C (KeyboardInterrupt) sends StopXJob, says so, and raises
the KeyboardInterrupt again, so the stage ends as an interrupted stage does;
a stopped training job's checkpoints stay in S3 for the next run.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from keyspot.sagemaker_jobs import JobError
from keyspot.sagemaker_jobs.cloudwatch import LogTail

TERMINAL = ("Completed", "Failed", "Stopped")


@dataclasses.dataclass(frozen=True)
class Kind:
    noun: str             # "training job"
    api: str              # "TrainingJob": TrainingJobName, create_training_job, ...
    log_group: str
    console: str          # the console page's fragment

    @property
    def snake(self) -> str:
        return re.sub(r"(?<!^)([A-Z])", r"_\1", self.api).lower()

    def call(self, sm, verb: str, **kwargs):
        return getattr(sm, f"{verb}_{self.snake}")(**kwargs)


TRAINING = Kind("training job", "TrainingJob", "/aws/sagemaker/TrainingJobs", "jobs")
PROCESSING = Kind("processing job", "ProcessingJob", "/aws/sagemaker/ProcessingJobs", "processing-jobs")

# What to do about a job SageMaker ended before it completed, by its secondary status.
HINTS = {
    "MaxRuntimeExceeded": "raise sagemaker.max_runtime_s (the next run resumes from the last checkpoint)",
    "MaxWaitTimeExceeded": "no spot capacity in time: raise sagemaker.spot.max_wait_s, choose another "
                           "sagemaker.instance_type, or set sagemaker.spot.enabled=false",
}


def clients(region: str):
    """(s3, sagemaker, logs) clients; credentials and endpoints the usual AWS way."""
    session = boto3.session.Session(region_name=region)
    return tuple(session.client(service, region_name=region) for service in ("s3", "sagemaker", "logs"))


def job_name(stage: str) -> str:
    """`keyspot-<stage>-<UTC time>-<random>`: SageMaker never reuses a job name."""
    return f"keyspot-{stage}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def console_url(kind: Kind, region: str, name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{kind.console}/{name}"


def _status_line(kind: Kind, described: dict) -> str:
    status = described.get(f"{kind.api}Status", "?")
    secondary = described.get("SecondaryStatus")
    line = status if not secondary or secondary == status else f"{status} ({secondary})"
    transitions = described.get("SecondaryStatusTransitions") or []
    if transitions and transitions[-1].get("StatusMessage"):
        line += f": {transitions[-1]['StatusMessage']}"
    return line


def failure(kind: Kind, described: dict) -> str:
    """SageMaker's reason, with the container's own message (ExitMessage) when it adds to it."""
    reason = described.get("FailureReason") or "no reason given"
    message = (described.get("ExitMessage") or "").strip()
    return f"{reason} ({message})" if message and message not in reason else reason


def stop(kind: Kind, sm, name: str, say: Callable[[str], None]) -> None:
    try:
        kind.call(sm, "stop", **{f"{kind.api}Name": name})
    except (BotoCoreError, ClientError) as err:
        say(f"could not stop SageMaker {kind.noun} {name} ({err}); stop it in the console")
        return
    say(f"Ctrl-C: asked SageMaker to stop {kind.noun} {name}; it ends within minutes"
        + ("; its checkpoints stay in S3 and the next run resumes from them" if kind is TRAINING else ""))


def wait(seconds: float) -> None:
    """The pause between two status checks, where a Ctrl-C usually lands."""
    time.sleep(seconds)


def follow(kind: Kind, sm, logs, request: dict, *, region: str, poll_s: float, stream_logs: bool,
           say: Callable[[str], None]) -> dict:
    """Create the job, follow it until it ends, return its description when Completed."""
    name = request[f"{kind.api}Name"]
    step, created = f"create {kind.noun} {name}", False
    try:
        kind.call(sm, "create", **request)
        created = True
        say(f"started SageMaker {kind.noun} {name}: {console_url(kind, region, name)}")
        tail = LogTail(logs, kind.log_group, name, say) if stream_logs else None
        step = f"follow {kind.noun} {name}"
        last = None
        while True:
            described = kind.call(sm, "describe", **{f"{kind.api}Name": name})
            if tail is not None:
                tail.poll()
            line = _status_line(kind, described)
            if line != last:
                say(f"{name}: {line}")
                last = line
            status = described.get(f"{kind.api}Status")
            if status in TERMINAL:
                break
            wait(poll_s)
    except KeyboardInterrupt:
        if created:
            stop(kind, sm, name, say)
        raise
    except (BotoCoreError, ClientError) as err:
        running = (f"; the job may still be running: stop it in the console ({console_url(kind, region, name)})"
                   if created else "")
        raise JobError(f"{step}: {err}{running}") from None

    if status == "Failed":
        raise JobError(f"SageMaker {kind.noun} {name} failed: {failure(kind, described)}")
    if status == "Stopped":
        secondary = described.get("SecondaryStatus", "Stopped")
        hint = HINTS.get(secondary, "rerun the stage to start it again")
        raise JobError(f"SageMaker {kind.noun} {name} was stopped ({secondary}); {hint}")
    return described
