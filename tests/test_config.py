from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.core.errors import ConfigError
from catalog.core.settings import _DEFAULT_FLAT, DEFAULTS, load_settings, redact_url


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(env={}, cwd=tmp_path)
    assert s.environment == "development"
    assert s.base_dir == tmp_path / "artifacts"
    assert s.catalog_url == f"sqlite:///{tmp_path / 'artifacts' / 'catalog.sqlite'}"
    assert s.retention["explain"].days == 30 and s.retention["explain"].action == "delete"
    assert s.retention["ledger"].days == 90 and s.retention["ledger"].action == "archive"
    assert s.retention["health"].days == 14
    assert s.retention["config"].days is None
    assert (s.json_indent, s.csv_precision) == (2, 6)
    assert s.limits.max_files_per_dir == 10_000 and s.limits.max_dir_bytes == 10 * 1024**3
    assert s.sqlite_synchronous == "full"
    assert s.config_file is None
    assert s.sources["base_dir"] == "default (environment development)"
    assert s.sources["catalog_url"] == "default (environment development) (SQLite in base_dir)"
    assert {v for k, v in s.sources.items() if k not in ("base_dir", "catalog_url")} == {"default"}


@pytest.mark.parametrize("name", ["a?b", "100%41", "a#b", "q?x=1&y=%2F", "café ünï", "%", "a%3Fb"])
def test_the_default_catalog_url_names_the_base_folder_whatever_its_name(tmp_path: Path, name: str) -> None:
    from sqlalchemy.engine import make_url

    s = load_settings(env={"CRYPTORUN_ARTIFACTS_DIR": str(tmp_path / name)}, cwd=tmp_path)
    url = make_url(s.catalog_url)
    assert url.database == str(tmp_path / name / "catalog.sqlite") and not url.query  # '?' no query, '%41' no 'A'


def test_a_base_folder_through_a_symlink_and_dotdot_is_where_the_os_finds_it(tmp_path: Path) -> None:
    """'lnk/../x' with lnk -> deep/inner is deep/x for the OS (POSIX pathname resolution), not ./x; init in the
    textual place would have made a second store beside the first."""
    (tmp_path / "deep" / "inner").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to("deep/inner")
    s = load_settings(env={"CRYPTORUN_ARTIFACTS_DIR": "lnk/../x"}, cwd=tmp_path)
    assert s.base_dir == tmp_path / "deep" / "x"
    assert load_settings(env={"CRYPTORUN_ARTIFACTS_DIR": "lnk"}, cwd=tmp_path).base_dir == tmp_path / "lnk"  # kept as named
    assert load_settings(env={"CRYPTORUN_ARTIFACTS_DIR": "./a/./b/../c/"}, cwd=tmp_path).base_dir == tmp_path / "a" / "c"
    outside = {"CRYPTORUN_ARTIFACTS_DIR": str(tmp_path / "deep" / "x")}
    write(tmp_path / "c.yaml", "audit:\n  checkpoint_dir: lnk/../x/cp\n")  # deep/x/cp: inside the store
    with pytest.raises(ConfigError, match="must be outside the store"):
        load_settings(tmp_path / "c.yaml", env=outside, cwd=tmp_path)


@pytest.mark.parametrize(
    "env,base",
    [("development", None), ("staging", "/opt/cryptorun/artifacts"), ("production", "/data/cryptorun/artifacts")],
)
def test_environment_picks_the_base_path(tmp_path: Path, env: str, base: str | None) -> None:
    s = load_settings(env={"CRYPTORUN_ENV": env}, cwd=tmp_path)
    assert s.base_dir == (Path(base) if base else tmp_path / "artifacts")
    assert s.sources["base_dir"] == f"env:CRYPTORUN_ENV (environment {env})"


def test_base_dir_beats_environment(tmp_path: Path) -> None:
    s = load_settings(env={"CRYPTORUN_ENV": "production", "CRYPTORUN_ARTIFACTS_DIR": str(tmp_path / "x")}, cwd=tmp_path)
    assert s.base_dir == tmp_path / "x"


def test_precedence_default_file_env_flag(tmp_path: Path) -> None:
    cfg = write(tmp_path / "config" / "artifacts.yaml", "base_dir: from-file\nretention:\n  explain:\n    days: 7\n")
    s = load_settings(env={}, cwd=tmp_path)  # picked up from ./config/artifacts.yaml
    assert s.base_dir == tmp_path / "from-file" and s.retention["explain"].days == 7
    assert s.sources["base_dir"] == f"file:{cfg}" and s.sources["retention.explain.days"] == f"file:{cfg}"
    assert s.sources["retention.ledger.days"] == "default"

    env = {"CRYPTORUN_ARTIFACTS_DIR": str(tmp_path / "from-env"), "CRYPTORUN_EXPLAIN_RETENTION_DAYS": "3"}
    s = load_settings(env=env, cwd=tmp_path)
    assert s.base_dir == tmp_path / "from-env" and s.retention["explain"].days == 3
    assert s.sources["base_dir"] == "env:CRYPTORUN_ARTIFACTS_DIR"

    s = load_settings(env=env, overrides={"base_dir": str(tmp_path / "from-flag")}, cwd=tmp_path)
    assert s.base_dir == tmp_path / "from-flag" and s.sources["base_dir"] == "argument:base_dir"
    labelled = load_settings(env=env, overrides={"base_dir": str(tmp_path / "x")}, cwd=tmp_path,
                             override_sources={"base_dir": "flag:--base-dir"})  # fmt: skip
    assert labelled.sources["base_dir"] == "flag:--base-dir"


def test_explicit_config_file_replaces_the_default_one(tmp_path: Path) -> None:
    write(tmp_path / "config" / "artifacts.yaml", "formats:\n  json_indent: 4\n")
    other = write(tmp_path / "other.yaml", "formats:\n  csv_precision: 2\n")
    s = load_settings(other, env={}, cwd=tmp_path)
    assert (s.json_indent, s.csv_precision) == (2, 2)


def test_every_documented_key_is_accepted(tmp_path: Path) -> None:
    text = """
environment: staging
base_dir: /srv/store
catalog_url: postgresql://catalog@db.internal/catalog
retention:
  explain: {days: 1, action: delete}
  ledger: {days: 2, action: archive}
  health: {days: 3, action: delete}
  config: {days: null, action: delete}
formats: {json_indent: 0, csv_precision: 3}
limits: {max_files_per_dir: 5, max_dir_bytes: 1 MiB, max_store_bytes: 2048}
sqlite: {synchronous: NORMAL, busy_timeout_ms: 100}
audit: {checkpoint_dir: /srv/checkpoints, max_clock_skew_seconds: 60}
"""
    s = load_settings(write(tmp_path / "a.yaml", text), env={}, cwd=tmp_path)
    assert s.catalog_url == "postgresql+psycopg://catalog@db.internal/catalog"
    assert s.limits.max_dir_bytes == 1024**2 and s.limits.max_store_bytes == 2048
    assert s.sqlite_synchronous == "normal" and s.sqlite_busy_timeout_ms == 100
    assert s.base_dir == Path("/srv/store")
    assert s.max_clock_skew.total_seconds() == 60 and s.values()["audit.max_clock_skew_seconds"] == 60


def test_the_shipped_config_file_matches_the_defaults() -> None:
    shipped = Path(__file__).resolve().parents[1] / "config" / "artifacts.yaml"
    s = load_settings(shipped, env={}, cwd=shipped.parent.parent)
    flat_defaults = load_settings(env={}, cwd=shipped.parent.parent / "nowhere").values()
    assert {k: v for k, v in s.values().items() if k != "base_dir" and k != "catalog_url"} == {
        k: v for k, v in flat_defaults.items() if k != "base_dir" and k != "catalog_url"
    }
    assert DEFAULTS["environment"] == s.environment


BAD_FILES = {
    "malformed": ("retention: [unclosed\n", "malformed YAML at line"),
    "tab-indent": ("retention:\n\texplain: 1\n", "malformed YAML"),
    "unknown-top": ("colour: blue\n", "unknown key 'colour'"),
    "unknown-nested": ("retention:\n  explain:\n    dayz: 3\n", "unknown key 'retention.explain.dayz'"),
    "unknown-type": ("retention:\n  trades:\n    days: 3\n", "unknown key 'retention.trades'"),
    "negative-days": ("retention:\n  explain:\n    days: -1\n", "key 'retention.explain.days'"),
    "float-days": ("retention:\n  ledger:\n    days: 1.5\n", "key 'retention.ledger.days'"),
    "string-days": ("retention:\n  health:\n    days: ten\n", "key 'retention.health.days'"),
    "bool-days": ("retention:\n  health:\n    days: true\n", "key 'retention.health.days'"),
    "huge-days": ("retention:\n  explain:\n    days: 99999999\n", "from 0 to 36600"),
    "bad-action": ("retention:\n  explain:\n    action: shred\n", "key 'retention.explain.action'"),
    "section-scalar": ("formats: 3\n", "key 'formats' must be a mapping"),
    "top-list": ("- a\n- b\n", "top level must be a mapping"),
    "indent-type": ("formats:\n  json_indent: two\n", "key 'formats.json_indent'"),
    "precision-range": ("formats:\n  csv_precision: 99\n", "key 'formats.csv_precision'"),
    "limit-zero": ("limits:\n  max_files_per_dir: 0\n", "key 'limits.max_files_per_dir'"),
    "limit-unit": ("limits:\n  max_dir_bytes: 10 parsecs\n", "key 'limits.max_dir_bytes'"),
    "bad-env": ("environment: moon\n", "key 'environment'"),
    "bad-url": ("catalog_url: mysql://x/y\n", "key 'catalog_url'"),
    "url-no-scheme": ("catalog_url: just-text\n", "key 'catalog_url'"),
    "base-dir-list": ("base_dir: [a, b]\n", "key 'base_dir'"),
    "python-tag": ("base_dir: !!python/object/apply:os.system ['echo pwned']\n", "malformed YAML"),
    "skew-negative": ("audit:\n  max_clock_skew_seconds: -1\n", "key 'audit.max_clock_skew_seconds'"),
    "skew-float": ("audit:\n  max_clock_skew_seconds: 1.5\n", "from 0 to 86400"),
    "skew-huge": ("audit:\n  max_clock_skew_seconds: 86401\n", "from 0 to 86400"),
    "sync-bad": ("sqlite:\n  synchronous: off\n", "key 'sqlite.synchronous'"),
    "int-key": ("1: a\n", "key '1'"),
    "duplicate-key": ("retention:\n  explain:\n    days: 3\n    days: 5\n",
                      "key 'days' at line 4, column 5 is given twice (first at line 3, column 5)"),
    "duplicate-top-key": ("environment: staging\nbase_dir: /x\nenvironment: production\n",
                          "key 'environment' at line 3, column 1 is given twice (first at line 1, column 1)"),
    "duplicate-flow-key": ("formats: {json_indent: 1, json_indent: 2}\n", "key 'json_indent' at line 1, column 27"),
    "duplicate-section": ("retention:\n  explain: {days: 1}\nretention:\n  ledger: {days: 2}\n", "key 'retention' at line 3"),
    "anchor-bomb": (
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        "unknown key 'a'",
    ),
}


@pytest.mark.parametrize("text,message", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_bad_config_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={}, cwd=tmp_path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(tmp_path, env={}, cwd=tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"base_dir: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(tmp_path / "latin1.yaml", env={}, cwd=tmp_path)


def test_null_days_keep_a_type_forever(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "keep.yaml", "retention:\n  explain:\n    days: null\n"), env={}, cwd=tmp_path)
    assert s.retention["explain"].days is None


def test_a_url_password_never_reaches_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"CRYPTORUN_CATALOG_URL": "mysql://user:s3cret@db/x"}, cwd=tmp_path)
    assert "s3cret" not in str(caught.value) and "user:***@" in str(caught.value)


#: Passwords a URL may carry (unescaped, as people write them), and the URLs that carry them.
SECRETS = ["se/cret", "se@cret", "se:cret", "se?cr#et", "s%2Fcret"]


def _url(password: str, query: str = "") -> str:
    return f"postgresql+psycopg://catalog:{password}@db.internal:5432/catalog{query}"


@pytest.mark.parametrize("password", SECRETS)
def test_a_url_password_is_hidden_however_it_is_written(password: str) -> None:
    shown = redact_url(_url(password))
    assert "cret" not in shown and "***" in shown
    assert shown.endswith("@db.internal:5432/catalog")
    assert redact_url(_url("x", f"?sslmode=require&password={password}")).count("cret") == 0


def test_a_url_without_password_is_shown_as_it_is() -> None:
    assert redact_url("postgresql+psycopg://catalog@db/catalog") == "postgresql+psycopg://catalog@db/catalog"
    assert redact_url("sqlite:////srv/store/catalog.sqlite") == "sqlite:////srv/store/catalog.sqlite"


@pytest.mark.parametrize("password", [p for p in SECRETS if "@" not in p])
def test_settings_values_never_carry_the_password(tmp_path: Path, password: str) -> None:
    settings = load_settings(env={"CRYPTORUN_CATALOG_URL": _url(password)}, cwd=tmp_path)
    assert settings.catalog_url == _url(password)  # the real one, for the driver
    assert "cret" not in json.dumps(settings.values())


@pytest.mark.parametrize("password", SECRETS)
def test_config_errors_never_carry_the_password(tmp_path: Path, password: str) -> None:
    mysql = _url(password).replace("postgresql+psycopg", "mysql")
    long_mysql = mysql.replace("db.internal", "h" * 99)  # shortened for the message: the password goes first
    yaml_list = write(tmp_path / "url.yaml", f"catalog_url: [{_url(password)!r}]\n")
    for env, file in (({"CRYPTORUN_CATALOG_URL": mysql}, None), ({"CRYPTORUN_CATALOG_URL": long_mysql}, None),
                      ({}, yaml_list)):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            load_settings(file, env=env, cwd=tmp_path)
        assert "cret" not in str(caught.value) and "catalog_url" in str(caught.value)


def test_an_unescaped_at_sign_in_a_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    # SQLAlchemy would read "se" as the password and "cret@db.internal" as the host, which the driver then echoes.
    with pytest.raises(ConfigError, match="write '@' as %40") as caught:
        load_settings(env={"CRYPTORUN_CATALOG_URL": _url("se@cret")}, cwd=tmp_path)
    assert "cret" not in str(caught.value)
    assert load_settings(env={"CRYPTORUN_CATALOG_URL": _url("se%40cret")}, cwd=tmp_path).catalog_url == _url("se%40cret")


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    text = "retention:\n  explain: &keep {days: 7, action: archive}\n  ledger:\n    <<: *keep\n    days: 9\n"
    s = load_settings(write(tmp_path / "merge.yaml", text), env={}, cwd=tmp_path)
    assert s.retention["ledger"] == s.retention["explain"].__class__(9, "archive")


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "empty.yaml", ""), env={}, cwd=tmp_path)
    assert s.retention["explain"].days == 30


@pytest.mark.parametrize(
    "var,value",
    [
        ("CRYPTORUN_EXPLAIN_RETENTION_DAYS", "-1"),
        ("CRYPTORUN_LEDGER_RETENTION_DAYS", "1.5"),
        ("CRYPTORUN_HEALTH_RETENTION_DAYS", "two weeks"),
        ("CRYPTORUN_ENV", "prod"),
        ("CRYPTORUN_CATALOG_URL", "ftp://x"),
        ("CRYPTORUN_ARTIFACTS_DIR", ""),
        ("CRYPTORUN_EXPLAIN_RETENTION_DAYS", "\u00b2"),
        ("CRYPTORUN_EXPLAIN_RETENTION_DAYS", "99999999"),
        ("CRYPTORUN_EXPLAIN_RETENTION_DAYS", ""),
        ("CRYPTORUN_MAX_CLOCK_SKEW_SECONDS", "5m"),
        ("CRYPTORUN_MAX_CLOCK_SKEW_SECONDS", "-300"),
    ],
)
def test_bad_environment_variables_are_named(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"env:{var}"):
        load_settings(env={var: value}, cwd=tmp_path)


def test_env_days_accept_whole_numbers(tmp_path: Path) -> None:
    s = load_settings(env={"CRYPTORUN_LEDGER_RETENTION_DAYS": " 0 "}, cwd=tmp_path)
    assert s.retention["ledger"].days == 0 and s.sources["retention.ledger.days"] == "env:CRYPTORUN_LEDGER_RETENTION_DAYS"
    s = load_settings(env={"CRYPTORUN_MAX_CLOCK_SKEW_SECONDS": "0"}, cwd=tmp_path)
    assert s.max_clock_skew.total_seconds() == 0


#: A value of every kind YAML gives, for every key: each is accepted or refused with a ConfigError, never a crash.
YAML_KINDS = ["[development]", "{a: 1}", "1.5", "true", "null", "-1", "''", "'x'", "2024-01-01", "!!binary aGk=",
              "[[a]]", "{[a]: 1}"]  # fmt: skip


@pytest.mark.parametrize("key", sorted(_DEFAULT_FLAT))
def test_every_key_takes_a_value_of_any_kind_without_crashing(tmp_path: Path, key: str) -> None:
    *sections, leaf = key.split(".")
    for kind in YAML_KINDS:
        text = "".join(f"{'  ' * depth}{name}:\n" for depth, name in enumerate(sections))
        path = write(tmp_path / "kinds.yaml", text + f"{'  ' * len(sections)}{leaf}: {kind}\n")
        try:
            load_settings(path, env={}, cwd=tmp_path)
        except ConfigError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), (key, kind)
