"""`mlspec serve`'s `/metrics`: Prometheus' text format, written by prometheus-client.

Series (every label value bounded, whatever the requests hold):
- `mlspec_http_requests_total{route, method, code}`: every answer. `route` is one of the
  server's routes or "other" (never the raw path), `method` one of the HTTP methods or "other".
- `mlspec_http_request_duration_seconds{route, method}`: a histogram of routed requests, from
  the parsed headers to the answer ready to send (body read, prediction made). Answers and
  predictions are counted before the client can read them: a client that got its answer
  finds it in the next scrape. (Requests the standard library refuses before routing, e.g.
  a malformed request line, are counted but not timed.)
- `mlspec_predictions_total{class}` for a classifier (its `classes_`, the first MAX_CLASSES of
  them, others "other"), or for a regressor the histogram `mlspec_prediction_value` and the
  summary `mlspec_prediction_magnitude{sign}`. prometheus-client omits a histogram's `_sum` once
  a bucket bound is negative (a sum that falls reads as a counter reset to rate()), so, as the
  Prometheus docs advise, the sums come from two monotone series: the magnitudes of the
  predictions >= 0 (`sign="positive"`) and of those < 0 (`sign="negative"`). The mean is
  (positive `_sum` - negative `_sum`) / (both `_count`s); non-finite predictions and those
  beyond ±MAX_SUMMED are left out of the summary (one inf or NaN, or two values near the
  float limit, would poison its sum for good), not of the histogram.
- `mlspec_model_info{model, digest, version, estimator} 1`: which model answers (one series,
  not a label on every series).
- `mlspec_sample_rows_total{outcome}`: rows of the request sample log written, dropped (queue
  full, write error) or skipped (over the row-size bound).

Each server has its own CollectorRegistry (never the process-global one), so tests and
several servers in one process never collide. prometheus-client is imported here, and this
module only when the exporter is on: `mlspec --help` never pays for it.
"""

from __future__ import annotations

import math
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from typing import Any

from mlspec.errors import Diagnostic, MlspecError
from mlspec.run.sklearn_step import INSTALL_HINT

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
OTHER = "other"
MAX_CLASSES = 256
MAX_SUMMED = 1e300  # a prediction beyond this is left out of the summary's sum
MAX_LABEL = 128  # characters of a label value we set from outside (version, file name)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                   0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
# Predicted values of a regressor, whatever their scale: ±{1, 2.5, 5} x 10^-2 .. 10^4, and 0.
_POSITIVE = tuple(m * 10.0 ** e for e in range(-2, 5) for m in (1.0, 2.5, 5.0))
VALUE_BUCKETS = tuple(sorted({-v for v in _POSITIVE} | {0.0} | set(_POSITIVE)))


def _import_client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise MlspecError([Diagnostic(
            "", 0, 0, f"the /metrics exporter needs prometheus-client: {INSTALL_HINT}",
            "serve.metrics-missing", "or serve without it: mlspec serve MODEL --no-metrics")]
        ) from None
    return prometheus_client


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 3] + "..."


class Metrics:
    """The exporter of one server: call `request` for every answer, `predicted` for every
    successful /predict, `render` for GET /metrics."""

    def __init__(self, routes: Iterable[str], model: dict[str, str],
                 classes: Sequence[object] | None):
        client = _import_client()
        self._client = client
        self.registry = client.CollectorRegistry(auto_describe=True)
        # the text format every Prometheus 2.x reads (newer clients' LATEST says 1.0.0)
        self.content_type: str = getattr(client, "CONTENT_TYPE_PLAIN_0_0_4",
                                         "text/plain; version=0.0.4; charset=utf-8")
        self.routes = frozenset(routes)
        self._requests = client.Counter(
            "mlspec_http_requests", "HTTP answers by route, method and status code",
            ("route", "method", "code"), registry=self.registry)
        self._latency = client.Histogram(
            "mlspec_http_request_duration_seconds",
            "time from a request's parsed headers to its answer written, by route and method",
            ("route", "method"), buckets=LATENCY_BUCKETS, registry=self.registry)
        info = client.Info("mlspec_model", "the model this server answers with",
                           registry=self.registry)
        info.info({k: _bounded(v) for k, v in model.items()})
        self._samples = client.Counter(
            "mlspec_sample_rows", "rows of the request sample log by outcome "
            "(written, dropped, skipped)", ("outcome",), registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._classes: dict[object, Any] = {}
        self._other_class: Any = None
        self._values: Any = None
        self._signs: tuple[Any, ...] = ()
        if classes is not None:
            by_class = client.Counter("mlspec_predictions", "predictions by predicted class",
                                      ("class",), registry=self.registry)
            for value in list(classes)[:MAX_CLASSES]:
                try:
                    self._classes[value] = by_class.labels(_bounded(str(value)))
                except TypeError:  # an unhashable class: counted as "other"
                    continue
            self._other_class = by_class.labels(OTHER)
        else:
            self._values = client.Histogram("mlspec_prediction_value", "predicted values",
                                            buckets=VALUE_BUCKETS, registry=self.registry)
            by_sign = client.Summary(
                "mlspec_prediction_magnitude", "magnitudes of finite predicted values by sign "
                "(mean: positive sum - negative sum over both counts)", ("sign",),
                registry=self.registry)
            self._signs = (by_sign.labels("positive"), by_sign.labels("negative"))

    def labels(self, path: str, method: str) -> tuple[str, str]:
        """The bounded labels of a request: a known route or "other", a method or "other"."""
        return (path if path in self.routes else OTHER,
                method if method in METHODS else OTHER)

    def request(self, route: str, method: str, code: int, seconds: float | None) -> None:
        """Count one answer (labels from `labels`); observe its latency when it was routed."""
        key = (route, method, code)
        children = self._children.get(key)
        if children is None:
            with self._lock:  # bounded: routes x methods x the codes this server sends
                children = self._children.setdefault(key, (
                    self._requests.labels(route, method, str(code)),
                    self._latency.labels(route, method)))
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    def predicted(self, predictions: Sequence[object]) -> None:
        if self._values is not None:
            for value in predictions:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._values.observe(value)
                    if math.isfinite(value) and abs(value) <= MAX_SUMMED:
                        self._signs[value < 0].observe(abs(value))
            return
        try:
            tally = Tally(predictions)
        except TypeError:  # unhashable predictions (multi-output): all "other"
            self._other_class.inc(len(predictions))
            return
        for value, n in tally.items():
            self._classes.get(value, self._other_class).inc(n)

    def sampled(self, outcome: str, n: int = 1) -> None:
        self._samples.labels(outcome).inc(n)

    def render(self) -> bytes:
        return bytes(self._client.generate_latest(self.registry))


def model_labels(name: str, sha256: str, version: str, estimator: str) -> dict[str, str]:
    return {"model": name, "digest": f"sha256:{sha256}", "version": version,
            "estimator": estimator}
