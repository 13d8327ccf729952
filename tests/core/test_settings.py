"""Settings: defaults in code, environment overrides, clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import PROJECT_ROOT, Settings


def test_defaults_use_an_sqlite_file_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var' / 'billing.db'}"
    assert (settings.rasa_port, settings.action_port) == (5005, 5055)


def test_environment_overrides(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://db/billing", "BILLING_RASA_PORT": "6005", "BILLING_VAR_DIR": str(tmp_path)}
    )
    assert settings.database_url == "postgresql://db/billing"
    assert settings.rasa_port == 6005
    assert settings.var_dir == tmp_path


def test_the_var_dir_moves_the_default_database(tmp_path: Path) -> None:
    assert Settings.from_env({"BILLING_VAR_DIR": str(tmp_path)}).database_url == f"sqlite:///{tmp_path / 'billing.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BILLING_RASA_PORT", "abc", "BILLING_RASA_PORT='abc'"),
        ("BILLING_ACTION_PORT", "70000", "BILLING_ACTION_PORT=70000"),
        ("BILLING_TRACKER_WINDOW", "5", "BILLING_TRACKER_WINDOW=5"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({variable: value})
