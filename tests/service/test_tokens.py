"""``segcore token create|list|revoke``: printed once, stored hashed, scopes."""

from __future__ import annotations

import sqlite3

import pytest

from segcore.cli import main
from segcore.errors import CatalogError, NotFoundError, UsageError
from segcore.store.tokens import Tokens, token_hash


def test_token_commands(writable_sample, capsys):
    home = str(writable_sample.home)
    assert main(["token", "create", "campaigns", "--home", home]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sgc_") and len(token) > 40
    assert main(["token", "create", "ops", "--scope", "admin", "--home", home, "--json"]) == 0
    assert '"scope": "admin"' in capsys.readouterr().out
    assert main(["token", "list", "--home", home]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["campaigns", "read"], ["ops", "admin"]]
    assert all("last used never" in line for line in lines)
    # only the hash is stored
    con = sqlite3.connect(writable_sample.catalog_path)
    stored = con.execute("SELECT hash FROM service_tokens WHERE name = 'campaigns'").fetchone()
    con.close()
    assert stored == (token_hash(token),)
    assert token.encode() not in writable_sample.catalog_path.read_bytes()
    tokens = Tokens(writable_sample.catalog_path)
    assert tokens.check(token).scope == "read"
    assert main(["token", "revoke", "campaigns", "--home", home]) == 0
    assert tokens.check(token) is None
    assert main(["token", "revoke", "campaigns", "--home", home]) == 2
    assert capsys.readouterr().err.strip() == "error: no token named 'campaigns'"


def test_token_errors(writable_sample):
    tokens = Tokens(writable_sample.catalog_path)
    tokens.create("a")
    with pytest.raises(CatalogError, match="a token named 'A' exists"):
        tokens.create("A")
    with pytest.raises(UsageError, match="bad scope"):
        tokens.create("b", "write")
    with pytest.raises(UsageError, match="1 to 100 characters"):
        tokens.create(" ")
    with pytest.raises(NotFoundError):
        tokens.revoke("zzz")
    assert tokens.check("sgc_forged") is None


def test_serve_refuses_a_public_address_without_allow_remote(writable_sample, capsys):
    code = main(["serve", "--home", str(writable_sample.home), "--host", "0.0.0.0"])
    assert code == 2
    assert "--allow-remote" in capsys.readouterr().err
