"""Run a WSGI app as a real HTTP server on 127.0.0.1 in a background thread."""
import threading

from werkzeug.serving import make_server


class ServerThread:
    """A threaded werkzeug server; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.server = make_server(host, port, app, threaded=True)
        # Track handler threads so stop() can wait for them: a daemon thread still writing its log line while
        # the interpreter shuts down aborts the whole process ("could not acquire lock for <stderr>").
        self.server.daemon_threads = False
        self.server.block_on_close = True
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        faults = getattr(self.app, "extensions", {}).get("emulator_faults")
        if faults is not None:
            faults.release()  # wake requests an injected fault keeps asleep
        self.server.shutdown()
        self.server.server_close()  # joins the handler threads
        self.thread.join(timeout=5)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
