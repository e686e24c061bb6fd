"""Configuration: sizes, env precedence, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracer import ConfigError, TracerConfig, parse_size


@pytest.mark.parametrize("text, value", [("65536", 65536), ("64MiB", 64 << 20), ("1.5GiB", 3 << 29), ("10MB", 10_000_000), ("4k", 4000), ("2 KiB", 2048)])
def test_parse_size(text: str, value: int) -> None:
    """Sizes take binary (KiB, MiB, GiB) and SI units."""
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-1", "0", "12XB", "1e9"])
def test_parse_size_rejects(text: str) -> None:
    """Anything that is not a positive size is a ConfigError naming the value."""
    with pytest.raises(ConfigError):
        parse_size(text)


def test_precedence_flag_over_env_over_default(tmp_path: Path) -> None:
    """A flag beats TRACER_* which beats the default."""
    env = {"TRACER_MEMORY": "64MiB", "TRACER_TIMEOUT": "5", "TRACER_CACHE_DIR": str(tmp_path), "TRACER_FUEL": "1000"}
    cfg = TracerConfig.from_env(env, timeout_s=2.0, fuel=None)
    assert (cfg.memory_limit_bytes, cfg.timeout_s, cfg.cache_dir, cfg.fuel) == (64 << 20, 2.0, tmp_path, 1000)
    assert TracerConfig.from_env({}).memory_limit_bytes == 128 << 20


def test_bad_env_value_is_a_config_error() -> None:
    """A TRACER_TIMEOUT that is not a positive number is refused."""
    with pytest.raises(ConfigError, match="timeout"):
        TracerConfig.from_env({"TRACER_TIMEOUT": "soon"})
