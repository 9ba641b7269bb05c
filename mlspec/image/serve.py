"""`mlspec serve MODEL`: a small HTTP server for scikit-learn models (standard library only).

    POST /predict   {"instances": [[5.1, 3.5, 1.4, 0.2], ...]}  ->  {"predictions": ["setosa", ...]}
    GET  /healthz   {"status": "ok"}
    GET  /metadata  the model file's hash, class, feature count, classes, and its lineage from
                    the mlspec.lock of its repository (params, metrics, out hashes)
    GET  /metrics   Prometheus' text format (serve_metrics; off with --no-metrics)

With a sample log (serve_sample), a random sample of the answered rows is appended to a
bounded JSON-lines file, for drift monitoring.

The model is loaded only when that lock records its exact bytes (unpickling runs code; see
serve_model), unless unlocked models are allowed explicitly. HTTP framing and request
validation live in serve_http; predictions run on one worker thread that batches concurrent
requests (serve_model.Batcher).
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.image.serve_http import MAX_BODY, ROUTES, BadRequest, Server, parse_instances
from mlspec.image.serve_model import Served, load_model

__all__ = ["MAX_BODY", "BadRequest", "Monitoring", "Served", "Server", "load_model",
           "make_server", "parse_instances", "serve_model"]


@dataclass(frozen=True)
class Monitoring:
    """What the server measures: the /metrics exporter, and the request sample log."""

    metrics: bool = True
    version: str = "unversioned"  # the model's release version, an info label
    sample_log: Path | None = None
    sample_rate: float = 0.1
    sample_max_bytes: int = 64 * 1024 * 1024


def make_server(served: Served, host: str, port: int, quiet: bool = False,
                monitoring: Monitoring | None = None) -> Server:
    mon = monitoring or Monitoring()
    metrics = None
    if mon.metrics:
        from mlspec.image.serve_metrics import Metrics, model_labels

        classes = served.metadata.get("classes")
        metrics = Metrics([*ROUTES, "/metrics"], model_labels(
            served.path.name, served.sha256, mon.version, str(served.metadata.get("class", ""))),
            classes if isinstance(classes, list) else None)
    sample = None
    if mon.sample_log is not None:
        from mlspec.image.serve_sample import SampleLog

        names = served.metadata.get("feature_names")
        sample = SampleLog(mon.sample_log, mon.sample_rate, mon.sample_max_bytes,
                           features=[str(n) for n in names] if isinstance(names, list) else None,
                           counted=metrics.sampled if metrics else None)
    return Server((host, port), served, quiet=quiet, metrics=metrics, sample=sample)


def serve_model(model_path: Path, host: str = "127.0.0.1", port: int = 8080,
                quiet: bool = False, allow_unlocked: bool = False,
                monitoring: Monitoring | None = None) -> Outcome:
    """Load the model and serve it until interrupted (Ctrl-C or SIGTERM)."""
    served = load_model(Path(model_path), allow_unlocked=allow_unlocked)
    try:
        server = make_server(served, host, port, quiet=quiet, monitoring=monitoring)
    except OSError as err:
        raise MlspecError([Diagnostic("", 0, 0, f"cannot listen on {host}:{port}: "
                                      f"{err.strerror or err}", "serve.listen",
                                      "pick a free port with --port")]) from None
    if allow_unlocked and not _locked(served):
        sys.stderr.write(f"warning: serving {model_path}, which mlspec.lock does not vouch "
                         "for (--allow-unlocked)\n")
    sys.stderr.write(f"serving {model_path} on http://{host}:{server.server_port} "
                     "(POST /predict, GET /healthz, GET /metadata"
                     + (", GET /metrics" if server.metrics else "") + ")\n")
    sys.stderr.flush()
    if threading.current_thread() is threading.main_thread():
        # As PID 1 in a container, SIGTERM has no default action: stop cleanly on it.
        signal.signal(signal.SIGTERM, lambda *_: _stop(server))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return Outcome(stderr="stopped\n")


def _locked(served: Served) -> bool:
    lineage = served.metadata.get("lineage")
    return isinstance(lineage, dict) and lineage.get("matches_lock") is True


def _stop(server: Server) -> None:
    threading.Thread(target=server.shutdown, daemon=True).start()
