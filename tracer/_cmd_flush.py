"""``tracer flush``: re-send the telemetry spooled while the collector was unreachable, and report.

Prints one line per signal (items found in the spool, exported, dropped by reason, still pending) and exits 0
when the spool is empty afterwards, 75 (EX_TEMPFAIL) when something is still pending (collector still away, or a
signal with no OTLP endpoint configured), 64 for a bad OTEL_* value. Reads the same environment as the pipeline:
OTEL_EXPORTER_OTLP_* and TRACER_SPOOL_DIR.
"""

from __future__ import annotations

import argparse
import os
import sys

from tracer import _exit


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spool-dir", help="the spool directory (default: $TRACER_SPOOL_DIR, ~/.cache/tracer/spool)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per request including retries (default: OTEL_EXPORTER_OTLP_TIMEOUT, 10 s)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from collector import ConfigError, PipelineConfig
    from collector._config import SIGNALS
    from collector._pipeline import resend_spool

    try:
        config = PipelineConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"tracer flush: {exc}", file=sys.stderr)
        return _exit.USAGE
    if args.spool_dir:
        config = config.replace(spool_dir=Path(args.spool_dir))
    if args.timeout is not None and not args.timeout > 0:
        print("tracer flush: --timeout must be a positive number of seconds", file=sys.stderr)
        return _exit.USAGE
    try:
        report, left = resend_spool(config, timeout_s=args.timeout)
    except ConfigError as exc:
        print(f"tracer flush: {exc}", file=sys.stderr)
        return _exit.USAGE
    for signal in SIGNALS:
        c = report.resent[signal]
        drops = ", ".join(f"{k}={v}" for k, v in sorted(c.dropped.items()) if v)
        note = ""
        if left[signal] and config.exporter(signal).kind != "otlp":
            note = " (no OTLP endpoint configured for this signal)"
        # emitted: what the spool held for this signal = what left it (exported, dropped) + what is still there
        emitted = c.exported + c.dropped_total + left[signal]
        print(f"{signal}: emitted {emitted}, exported {c.exported}, dropped {c.dropped_total}"
              f"{f' ({drops})' if drops else ''}, pending {left[signal]}{note}")
    return _exit.TEMPFAIL if any(left.values()) else _exit.OK
