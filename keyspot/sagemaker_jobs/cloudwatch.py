"""A job's CloudWatch logs, printed as they arrive.

SageMaker writes each instance's output to the stream `<job name>/algo-1-<time>`
in the log group /aws/sagemaker/TrainingJobs (or ProcessingJobs). The streams
appear once the container starts; until then there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError


class LogTail:
    """Prints the events of a job's streams that it has not printed yet, oldest first."""

    def __init__(self, logs, group: str, job_name: str, say: Callable[[str], None]):
        self.logs, self.group, self.prefix, self.say = logs, group, f"{job_name}/", say
        self.tokens: dict[str, str] = {}
        self.broken = False

    def _streams(self) -> list[str]:
        names = []
        for page in self.logs.get_paginator("describe_log_streams").paginate(
                logGroupName=self.group, logStreamNamePrefix=self.prefix):
            names += [stream["logStreamName"] for stream in page.get("logStreams", [])]
        return sorted(names)

    def poll(self) -> None:
        if self.broken:
            return
        try:
            streams = self._streams()
            for stream in streams:
                self._print_new(stream, several=len(streams) > 1)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return  # no log group yet: the first job of this kind in the account has not started
            self._give_up(err)
        except BotoCoreError as err:
            self._give_up(err)

    def _print_new(self, stream: str, several: bool) -> None:
        while True:
            request = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
            if stream in self.tokens:
                request["nextToken"] = self.tokens[stream]
            page = self.logs.get_log_events(**request)
            self.tokens[stream] = page.get("nextForwardToken", self.tokens.get(stream))
            for event in page.get("events", []):
                host = f"[{stream.removeprefix(self.prefix)}] " if several else ""
                for line in event["message"].rstrip("\n").splitlines() or [""]:
                    self.say(f"| {host}{line}")
            if not page.get("events"):
                return

    def _give_up(self, err) -> None:
        # The job goes on; only its logs cannot be shown (e.g. no logs:GetLogEvents permission).
        self.broken = True
        self.say(f"cannot read the job's CloudWatch logs ({err}); following its status only")
