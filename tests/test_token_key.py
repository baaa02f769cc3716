"""fhirnet's token key (fhirnet.token_key): made once, private, and the same for every worker
process, even those that start at the same moment."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from fhirnet.config import ConfigError, Settings
from fhirnet.token_key import KEY_BYTES, load_token_key, token_key_path


def test_the_key_is_created_on_first_use_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token-key"

    key = load_token_key(path)

    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token_key(path) == key  # read, not made again
    assert [p.name for p in path.parent.iterdir()] == ["token-key"]  # no temporary left


def test_the_key_is_in_the_data_directory_unless_a_file_is_named(tmp_path: Path) -> None:
    assert token_key_path(Settings(data_dir=tmp_path)) == tmp_path / "token-key"
    named = tmp_path / "elsewhere" / "key"
    assert token_key_path(Settings(data_dir=tmp_path, token_key_file=named)) == named


def _load(path: str) -> bytes:
    return load_token_key(Path(path))


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "token-key"
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        keys = pool.map(_load, [str(path)] * 32)

    assert len(set(keys)) == 1
    assert keys[0] == load_token_key(path)


@pytest.mark.parametrize("content", ["", "not hex", "00" * 16], ids=["empty", "not hex", "short"])
def test_a_key_file_without_a_usable_key_stops_the_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token-key"
    path.write_text(content)

    with pytest.raises(ConfigError, match=str(path)):
        load_token_key(path)


def test_a_key_file_that_cannot_be_made_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(ConfigError, match="token key file"):
        load_token_key(tmp_path / "file" / "token-key")


# -- several hosts (FHIRNET_DATABASE_URL) ------------------------------------------------------

DATABASE_URL = "postgresql://fhirnet:pw@db.example.org:5432/fhirnet"


def test_several_hosts_without_a_named_key_file_are_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=DATABASE_URL)

    with pytest.raises(ConfigError, match="FHIRNET_TOKEN_KEY_FILE is not") as raised:
        token_key_path(settings)

    assert "secrets.token_hex(32)" in str(raised.value)  # says how to make one
    assert "pw@" not in str(raised.value)


def test_several_hosts_never_create_the_key_each_for_itself(tmp_path: Path) -> None:
    named = tmp_path / "shared" / "token-key"
    settings = Settings(data_dir=tmp_path, database_url=DATABASE_URL, token_key_file=named)

    with pytest.raises(ConfigError, match="does not exist"):
        token_key_path(settings)

    assert not named.exists()


def test_several_hosts_read_the_key_file_they_share(tmp_path: Path) -> None:
    named = tmp_path / "shared" / "token-key"
    key = load_token_key(named)  # made once, by the operator (or the first single host)
    hosts = [
        Settings(data_dir=tmp_path / f"host-{n}", database_url=DATABASE_URL, token_key_file=named)
        for n in range(3)
    ]

    assert {load_token_key(token_key_path(host)) for host in hosts} == {key}
