"""An S3 API on loopback for the object-storage tests: moto's standalone server.

:class:`S3Server` runs moto's server app (``moto[server]``, as s3fs's own tests run
it) in a thread on a free loopback port, behind a small WSGI layer that counts the
body bytes the server sends (``sent``) and can be told to fail requests
(``fail``: a rule that returns ``'500'``, ``'cut'`` — the response cut off
mid-body, the connection dropped — or ``'kill'`` — the server stops listening and
the request's connection drops).  moto keeps its state per process, so a server
started again on the same port sees the same buckets and uploads.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Callable, Dict, List, Optional

ACCESS_KEY = "AKIATESTTESTTEST0001"
# a value to look for in output: it must never appear (tests/test_*_objstore.py)
SECRET_KEY = "sEcReT/dumpcodec+TEST+0123456789abcdefXYZ"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Cut(Exception):
    pass


class S3Server:
    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.sent = 0                 # response body bytes
        self.requests: List[str] = []   # "METHOD path?query" of each request
        self.fail: Optional[Callable[[dict], Optional[str]]] = None
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # -- the WSGI layer
    def _app(self, inner):
        def app(environ, start_response):
            what = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}" \
                   f"?{environ.get('QUERY_STRING', '')}"
            with self._lock:
                self.requests.append(what)
            action = self.fail(environ) if self.fail is not None else None
            if action == "500":
                _drain(environ)
                body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
                        b"InternalError</Code><Message>injected by the test</Message>"
                        b"</Error>")
                start_response("500 Internal Server Error",
                               [("Content-Type", "application/xml"),
                                ("Content-Length", str(len(body)))])
                return [body]
            if action == "kill":
                threading.Thread(target=self.stop, daemon=True).start()
                raise _Cut("killed")
            result = inner(environ, start_response)
            return self._counted(result, cut=action == "cut")
        return app

    def _counted(self, result, cut: bool):
        sent = 0
        try:
            for part in result:
                if cut and sent + len(part) > 1000:
                    part = part[:max(0, 1000 - sent)]
                    if part:
                        with self._lock:
                            self.sent += len(part)
                        yield part
                    raise _Cut("cut mid-body")
                sent += len(part)
                with self._lock:
                    self.sent += len(part)
                yield part
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # -- life
    def start(self) -> "S3Server":
        import logging
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                   MotoRequestHandler,
                                                   create_backend_app)
        from werkzeug.serving import make_server
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        app = self._app(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def env(self) -> Dict[str, str]:
        """The AWS environment a client of this server needs (and nothing else)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


def _drain(environ) -> None:
    n = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while n > 0:
        got = stream.read(min(n, 1 << 20))
        if not got:
            break
        n -= len(got)


def clean_env(server: S3Server) -> Dict[str, str]:
    """os.environ without other AWS settings, plus ``server.env()``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.env())
    return env
