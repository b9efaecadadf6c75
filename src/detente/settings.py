"""Node settings, declared once as (name, default, help).

Read from ``detente.toml`` in the node home, overridden by ``DETENTE_<NAME>`` environment
variables, in this one place.  The CLI, the server and the tests all read settings through
:func:`load_settings`.  Secrets never appear in ``repr``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detente.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings", "update_settings",
           "write_settings"]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("name", "", "the node's name, as partners know it (e.g. us, fr, ru)"),
    Setting("store", "", "store URL: sqlite:///PATH (default: store.db in the home) "
                         "or postgresql://USER@HOST:PORT/DB"),
    Setting("url", "http://127.0.0.1:8000", "the URL partners use to reach this node"),
    Setting("host", "127.0.0.1", "address `detente serve` binds to"),
    Setting("port", 8000, "port `detente serve` binds to"),
    Setting("trusted_proxies", "", "comma-separated addresses of reverse proxies whose "
            "X-Forwarded-For/-Proto `serve` believes; empty: none (the peer address counts)"),
    Setting("communities", "", "comma-separated communities this node belongs to"),
    Setting("default_marking", "", "TLP applied to objects without one (clear, green, "
                                    "amber); empty: such objects are never released"),
    Setting("max_request_bytes", 10 * 1024 * 1024, "largest TAXII request body accepted"),
    Setting("page_limit", 1000, "largest TAXII page served"),
    Setting("signature_window_s", 300, "largest accepted age of a signed request, seconds "
            "(its 'created' may also be up to 30 s in the future)"),
    Setting("push_objects_per_day", 100_000, "objects each partner may push to our inbox "
            "per day (UTC); past it the inbox answers 429"),
    Setting("trust_expire_interval_s", 3600, "how often `serve` and `sync --watch` mark "
            "partners' reports whose valid_until passed with no outcome as expired, seconds"),
    Setting("release_interval_s", 1, "how often `serve` checks for content not yet released "
            "to partners and releases it in the background, in chunks, seconds (0: never; "
            "then run `detente release`)"),
    Setting("refuted_release", "withdraw", "what becomes of a partner's report we refuted: "
            "'withdraw' (every release of it is withdrawn, it is never relayed again) or "
            "'with-opinion' (released only to the partners our refuting opinion goes to)"),
    Setting("fingerprint_secret_file", "fingerprint.key",
            "file (in the home) holding the leak-attribution secret", secret=True),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class Settings(Mapping[str, Any]):
    """Resolved settings: file values, then ``DETENTE_*`` overrides."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self) -> str:
        shown = {
            k: ("***" if _BY_NAME[k].secret else v) for k, v in self._values.items()
        }
        return f"Settings({shown})"


def _coerce(setting: Setting, raw: Any, source: str) -> Any:
    if isinstance(setting.default, bool):
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in {"1", "true", "yes"}:
            return True
        if str(raw).lower() in {"0", "false", "no"}:
            return False
    elif isinstance(setting.default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            pass
    elif isinstance(raw, str):
        return raw
    raise ConfigError(
        f"setting {setting.name} from {source} must be {type(setting.default).__name__}, "
        f"got {raw!r}"
    )


def load_settings(home: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``home/detente.toml`` and apply ``DETENTE_*`` overrides."""
    env = os.environ if env is None else env
    path = home / "detente.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{home} is not a detente node home (no detente.toml)",
            hint="create one with 'detente init --home DIR --name NAME'",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    values: dict[str, Any] = {}
    for s in SETTINGS:
        values[s.name] = _coerce(s, data.get(s.name, s.default), str(path))
        env_key = "DETENTE_" + s.name.upper()
        if env_key in env:
            values[s.name] = _coerce(s, env[env_key], env_key)
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    if not values["store"]:
        values["store"] = f"sqlite:///{home / 'store.db'}"
    return Settings(values)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_settings(home: Path, values: Mapping[str, Any], *, path: Path | None = None) -> None:
    """Write ``detente.toml`` (or ``path``) with every setting and its help as a comment."""
    lines = ["# detente node settings; each may be overridden by DETENTE_<NAME>.", ""]
    for s in SETTINGS:
        lines.append(f"# {s.help}")
        lines.append(f"{s.name} = {_toml_value(values.get(s.name, s.default))}")
    (path or home / "detente.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def update_settings(home: Path, **changed: Any) -> None:
    """Change settings in ``home/detente.toml``, keeping the file's other values (not the
    ``DETENTE_*`` overrides of this process).  The file is replaced atomically."""
    path = home / "detente.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{home} is not a detente node home (no detente.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(changed) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
    data.update(changed)
    tmp = home / ".detente.toml.new"
    write_settings(home, data, path=tmp)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)
