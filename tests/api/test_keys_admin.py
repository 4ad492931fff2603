"""Keys through the /admin API and the CLI: roles, visibility, rotation, revocation, expiry."""

from __future__ import annotations

import re
import time

import openai
import pytest
from zhipuai import ZhipuAI

from .accounts import admin, chat, create_key, error_code, refused_within
from .server_process import GlmServe

KEY_SHAPE = re.compile(r"^[0-9a-f]{32}\.[A-Za-z0-9]{16}$")


def test_admin_creates_lists_reads_and_updates_keys(server: GlmServe) -> None:
    key, key_id = create_key(server, name="made-by-api", rpm=100, models=["glm-4.6"], budget_tokens=10_000)
    assert KEY_SHAPE.match(key)
    with admin(server) as http:
        listed = http.get("/admin/keys").json()["data"]
        one = http.get(f"/admin/keys/{key_id}").json()
        patched = http.patch(f"/admin/keys/{key_id}", json={"rpm": None, "tpm": 5000, "name": "renamed"})
    assert key_id in [k["id"] for k in listed]
    assert one["name"] == "made-by-api" and one["role"] == "user" and one["models"] == ["glm-4.6"]
    assert one["budget_tokens"] == 10_000 and one["budget_used"] == 0 and "key" not in one
    assert patched.status_code == 200, patched.text
    assert (patched.json()["rpm"], patched.json()["tpm"], patched.json()["name"]) == (None, 5000, "renamed")
    assert key.split(".")[1] not in str(listed) + str(one)


def test_key_a_cannot_read_revoke_or_rotate_key_b(server: GlmServe) -> None:
    key_a, id_a = create_key(server, name="a")
    _, id_b = create_key(server, name="b")
    with admin(server, key_a) as as_a:
        own = as_a.get("/admin/keys").json()["data"]
        attempts = {
            "read": as_a.get(f"/admin/keys/{id_b}"),
            "revoke": as_a.post(f"/admin/keys/{id_b}/revoke"),
            "delete": as_a.delete(f"/admin/keys/{id_b}"),
            "rotate": as_a.post(f"/admin/keys/{id_b}/rotate", json={}),
            "usage": as_a.get("/admin/usage", params={"key_id": id_b}),
            "daily": as_a.get("/admin/usage/daily", params={"key_id": id_b}),
        }
        create = as_a.post("/admin/keys", json={"name": "sneaky"})
        patch_other = as_a.patch(f"/admin/keys/{id_b}", json={"rpm": 1})
        patch_self = as_a.patch(f"/admin/keys/{id_a}", json={"rpm": 100000})
        own_usage = as_a.get("/admin/usage")
    assert [k["id"] for k in own] == [id_a], "a user key sees only itself"
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 404)
    assert all(id_b not in r.text for r in attempts.values())
    assert (create.status_code, error_code(create)) == (403, "1220")
    assert patch_other.status_code == 403 and patch_self.status_code == 403
    assert own_usage.status_code == 200
    with admin(server) as http:
        b = http.get(f"/admin/keys/{id_b}").json()
    assert b["status"] == "active" and b["previous_secret_valid_until"] is None


def test_roles_cannot_be_set_by_mass_assignment(server: GlmServe) -> None:
    key, key_id = create_key(server, name="plain")
    with admin(server) as http:
        escalate = http.patch(f"/admin/keys/{key_id}", json={"role": "admin"})
        unknown = http.post("/admin/keys", json={"name": "x", "is_admin": True})
    with admin(server, key) as as_user:
        self_escalate = as_user.patch(f"/admin/keys/{key_id}", json={"role": "admin"})
        create_admin = as_user.post("/admin/keys", json={"role": "admin"})
    assert (escalate.status_code, error_code(escalate), escalate.json()["error"]["param"]) == (
        400,
        "1214",
        "role",
    )
    assert unknown.status_code == 400
    assert self_escalate.status_code in (400, 403) and create_admin.status_code == 403
    with admin(server) as http:
        assert http.get(f"/admin/keys/{key_id}").json()["role"] == "user"


def test_an_admin_key_made_by_an_admin_can_manage_keys(server: GlmServe) -> None:
    other, other_id = create_key(server, name="made-by-static")
    boss, boss_id = create_key(server, name="boss", role="admin")
    with admin(server, boss) as http:
        made = http.post("/admin/keys", json={"name": "by-boss"})
        everyone = {k["id"] for k in http.get("/admin/keys").json()["data"]}
        read_other = http.get(f"/admin/keys/{other_id}")
        revoke_other = http.post(f"/admin/keys/{other_id}/revoke")
    with admin(server) as http:
        as_static = {k["id"] for k in http.get("/admin/keys").json()["data"]}
    assert made.status_code == 201, made.text
    made_id = made.json()["key"].split(".")[0]
    assert {boss_id, other_id, made_id} <= everyone, "an admin sees keys it did not make"
    assert everyone == as_static, "the same list as the static admin key's"
    assert (read_other.status_code, read_other.json()["name"]) == (200, "made-by-static")
    assert revoke_other.status_code == 200 and chat(server, other).status_code == 401


def test_rotation_keeps_the_old_secret_for_its_grace_period_only(server: GlmServe) -> None:
    old, key_id = create_key(server, name="rotating")
    with admin(server, old) as as_self:
        rotated = as_self.post(f"/admin/keys/{key_id}/rotate", json={"grace_s": 30})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["key"]
    assert new.split(".")[0] == key_id and new != old
    assert chat(server, old).status_code == 200, "inside the grace period"
    assert chat(server, new).status_code == 200
    jwt_client = ZhipuAI(
        api_key=new, base_url=server.paas_url.rstrip("/"), max_retries=0, disable_token_cache=False
    )
    assert jwt_client.chat.completions.create(
        model="glm-4.6", messages=[{"role": "user", "content": "hi"}], max_tokens=1
    )

    with admin(server) as http:
        again = http.post(f"/admin/keys/{key_id}/rotate", json={"grace_s": 0}).json()["key"]
    refused = chat(server, new)
    assert (refused.status_code, error_code(refused)) == (401, "1002")
    assert chat(server, old).status_code == 401
    assert chat(server, again).status_code == 200


def test_revoked_and_expired_keys_are_refused_on_their_next_request(server: GlmServe) -> None:
    with admin(server) as http:
        created = http.post("/admin/keys", json={"name": "short-lived", "expires_in_s": 2}).json()
    key, key_id, expires_at = created["key"], created["id"], created["expires_at"]
    doomed, doomed_id = create_key(server, name="doomed")
    assert chat(server, key).status_code == 200 and chat(server, doomed).status_code == 200
    with admin(server) as http:
        revoked = http.post(f"/admin/keys/{doomed_id}/revoke")
    assert revoked.json()["status"] == "revoked"
    refused = chat(server, doomed)  # the very next request
    assert (refused.status_code, error_code(refused)) == (401, "1002")

    time.sleep(max(0.0, expires_at - time.time()))
    expired = chat(server, key)  # the first request at or after expires_at
    assert (expired.status_code, error_code(expired)) == (401, "1003")
    with admin(server) as http:
        assert http.get(f"/admin/keys/{key_id}").json()["status"] == "expired"


def test_cli_creates_keys_with_limits_and_rotates_them(server: GlmServe) -> None:
    created = server.cli(
        "keys", "create", "--name", "cli-limited", "--rpm", "7", "--tpm", "5000", "--concurrency", "2",
        "--budget-tokens", "100000", "--models", "glm-4.5-flash,glm-4.6", "--admin",
    )  # fmt: skip
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and KEY_SHAPE.match(lines[-1]), created.stdout
    key = lines[-1]
    key_id = key.split(".")[0]
    listed = server.cli("keys", "list").stdout
    row = next(line for line in listed.splitlines() if line.startswith(key_id))
    assert (
        "admin" in row
        and "rpm=7" in row
        and "budget=100000/total" in row
        and "models=glm-4.5-flash,glm-4.6" in row
    )
    assert key.split(".")[1] not in listed
    refused = chat(server, key, model="glm-4.5-air")
    assert (refused.status_code, error_code(refused)) == (403, "1220")
    with pytest.raises(openai.PermissionDeniedError):
        sdk = openai.OpenAI(api_key=key, base_url=server.paas_url, max_retries=0)
        sdk.chat.completions.create(
            model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    with admin(server, key) as as_admin:
        assert as_admin.post("/admin/keys", json={"name": "from-cli-admin"}).status_code == 201

    rotated = server.cli("keys", "rotate", key_id, "--grace-s", "0").stdout.splitlines()
    assert len(rotated) == 1 and rotated[0].startswith(key_id + ".") and rotated[0] != key
    assert refused_within(server, key).status_code == 401  # rotated by another process: within 1 s
    assert chat(server, rotated[0]).status_code == 200
