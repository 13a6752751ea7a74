"""A real S3-protocol server on this machine, without Docker: moto's server mode (`moto_server`)
in a subprocess on 127.0.0.1 and a free port, for an `s3://` lake in tests.

A subprocess, not moto's ThreadedMotoServer: delta-rs and pyarrow call the server from native
code, and a server in this interpreter would compete with them for the GIL.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import boto3

from audotics.services import free_port
from tests.support import REPO

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
REGION = "us-east-1"
# moto accepts any credentials; these only have to be the same for every client.
ACCESS_KEY, SECRET_KEY = "audotics-test", "audotics-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>

    @property
    def storage_options(self) -> dict[str, str]:
        """delta-rs storage options (`AUDOTICS_STORAGE_OPTIONS`) for this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_bucket(self) -> str:
        """A fresh bucket (a lake of its own per test); returns its name."""
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def lake(self) -> dict[str, object]:
        """Settings overrides for an `s3://` lake in a fresh bucket of this server."""
        return {
            "lake_uri": f"s3://{self.new_bucket()}/lake",
            "storage_options": self.storage_options,
        }

    def client(self):  # a boto3 S3 client, to look at the bucket behind the lake's back
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, up within START_TIMEOUT_SECONDS or failed, and always stopped."""
    port = free_port()
    # The server logs every request: to a file, as a pipe nobody reads would fill and stall it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            server = S3Server(f"http://127.0.0.1:{port}")
            _wait_until_up(server, process, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: S3Server, process: subprocess.Popen, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"moto_server exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(
        f"moto_server did not answer on {server.endpoint} within {START_TIMEOUT_SECONDS:.0f} s"
    )
