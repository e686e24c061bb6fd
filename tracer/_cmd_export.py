"""``tracer export replay DIR|FILE...``: send OTLP/JSON files written by the embedded default to a collector.

Each line of ``traces.jsonl``/``logs.jsonl``/``metrics.jsonl`` (or any ``*.jsonl`` given) is one export request;
it is sent as it is to the endpoint configured by OTEL_EXPORTER_OTLP_* (gRPC or http/protobuf), with the usual
retries. Prints per signal the items read, exported, dropped and not sent. Exit 0 when everything was exported,
69 (EX_UNAVAILABLE) when the collector could not take it all, 64 when no endpoint is configured or a value is bad,
65 for a file that is not OTLP/JSON, 66 for a missing path. Replaying twice sends twice.
"""

from __future__ import annotations

import argparse
import os
import sys

from tracer import _exit


def add_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True
    replay = sub.add_parser("replay", help="send OTLP/JSON telemetry files to the configured collector",
                            description="send OTLP/JSON telemetry files to the configured collector")
    replay.add_argument("paths", nargs="+", metavar="PATH",
                        help="a telemetry directory (as $TRACER_TELEMETRY_DIR) or .jsonl files")


def run(args: argparse.Namespace) -> int:
    import threading
    import time
    from collections import Counter
    from pathlib import Path

    from collector import ConfigError, PipelineConfig, ReplayError
    from collector._config import SIGNALS
    from collector._file_exporter import FILE_NAMES, count_items, read_json_file, split_request
    from collector._transport import make_transport

    try:
        config = PipelineConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"tracer export: {exc}", file=sys.stderr)
        return _exit.USAGE
    files: list[Path] = []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            found = [path / FILE_NAMES[s] for s in SIGNALS if (path / FILE_NAMES[s]).is_file()]
            found += sorted(p for p in path.glob("*.jsonl") if p not in found)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            print(f"tracer export: no such file or directory: {raw}", file=sys.stderr)
            return _exit.NO_INPUT
    if not any(config.exporter(s).kind == "otlp" for s in SIGNALS):
        print("tracer export: no collector configured: set OTEL_EXPORTER_OTLP_ENDPOINT "
              "(or OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT)", file=sys.stderr)
        return _exit.USAGE

    abort = threading.Event()
    try:
        transports = {s: make_transport(config.exporter(s), abort) for s in SIGNALS
                      if config.exporter(s).kind == "otlp"}
    except (OSError, ValueError) as exc:
        print(f"tracer export: OTEL_EXPORTER_OTLP_CERTIFICATE/CLIENT_KEY/CLIENT_CERTIFICATE: {exc}", file=sys.stderr)
        return _exit.USAGE
    read: Counter[str] = Counter()
    exported: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    unsent: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    try:
        for path in files:
            for _number, signal, request in read_json_file(path):
                n = count_items(signal, request)
                read[signal] += n
                transport = transports.get(signal)
                if transport is None:
                    skipped[signal] += n
                    continue
                parts, too_large = split_request(signal, request, config.max_request_bytes)
                rejected[signal] += too_large
                for part in parts:
                    k = count_items(signal, part)
                    deadline = time.monotonic() + config.exporter(signal).timeout_s
                    result = transport.send(part.SerializeToString(), deadline)
                    if result.ok:
                        exported[signal] += k - result.rejected
                        rejected[signal] += result.rejected
                    elif result.retryable:
                        unsent[signal] += k
                    else:
                        rejected[signal] += k
                    if not result.ok:
                        print(f"tracer export: {path}: {signal}: {result.error}", file=sys.stderr)
    except ReplayError as exc:
        print(f"tracer export: {exc}", file=sys.stderr)
        return _exit.DATA
    finally:
        for t in transports.values():
            t.close()
    for signal in SIGNALS:
        if read[signal]:
            extra = f", skipped {skipped[signal]} (no endpoint for {signal})" if skipped[signal] else ""
            print(f"{signal}: read {read[signal]}, exported {exported[signal]}, dropped {rejected[signal]}, "
                  f"not sent {unsent[signal]}{extra}")
    if sum(unsent.values()) or sum(skipped.values()) or sum(rejected.values()):
        return _exit.UNAVAILABLE
    return _exit.OK
