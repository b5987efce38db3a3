"""`walltrack-config serve` as an operator runs it: a process of its own that serves the API, stops gracefully
(a request in flight completes), refuses unsafe or impossible starts with one line and its exit code, applies
pending migrations only when asked, and serves HTTPS with Strict-Transport-Security."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import CLI
from walltrack_config import lifecycle, principals

pytestmark = pytest.mark.installed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"}
    env["WALLTRACK_HOME"] = str(home)
    return env


def run(url: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A serve that is expected to refuse: it must end by itself, quickly."""
    return subprocess.run(
        [str(CLI), "--database-url", url, "serve", *args],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=60,
    )


def start(url: str, home: Path, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CLI), "--database-url", url, "serve", "--port", str(port), "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home),
    )


def wait_ready(process: subprocess.Popen[str], base: str, timeout: float = 30, **client: Any) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve ended with {process.returncode}: {process.communicate()[1]}")
        try:
            answer = httpx.get(f"{base}/api/v1/readyz", timeout=2, **client)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("serve did not become ready")


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    if process.poll() is None:
        process.terminate()
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def one_error_line(result: subprocess.CompletedProcess[str], starts: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr
    assert "Traceback" not in result.stderr


def test_it_serves_the_api_until_terminated(migrated_db, tmp_path):
    port = free_port()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        _, token = principals.create_token(conn, "cli", "reader", actor="tests")
    process = start(migrated_db, tmp_path, port)
    try:
        ready = wait_ready(process, f"http://127.0.0.1:{port}")
        assert ready.json()["status"] == "ready" and "strict-transport-security" not in ready.headers
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/config", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "risk" in answer.json()["domains"]
        assert "server" not in answer.headers  # uvicorn's banner is not sent
    finally:
        code, err = stop(process)
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_lets_the_request_in_flight_finish_then_it_exits(migrated_db, tmp_path, sent, code):
    port = free_port()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        _, token = principals.create_token(conn, "cli", "editor", actor="tests")
        draft = lifecycle.clone(conn, "risk", actor="tests")
    process = start(migrated_db, tmp_path, port)
    answers: list[httpx.Response | BaseException] = []
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        with psycopg.connect(migrated_db) as holder:  # a transaction of its own, open until released
            holder.execute("SELECT walltrack.lock_config_writes()")

            def patch() -> None:
                try:
                    answers.append(
                        httpx.patch(
                            f"http://127.0.0.1:{port}/api/v1/config/risk/drafts/{draft.id}",
                            headers={"Authorization": f"Bearer {token}", "If-Match": str(draft.version)},
                            json={"settings": {"max_order_attempts": 8}, "reason": "in flight"},
                            timeout=30,
                        )
                    )
                except BaseException as exc:  # reported below
                    answers.append(exc)

            writer = threading.Thread(target=patch)
            writer.start()
            with psycopg.connect(migrated_db, autocommit=True) as watcher:
                deadline = time.monotonic() + 10
                while not watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'walltrack-server'"
                    " AND wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()[0]:
                    assert time.monotonic() < deadline, "the PATCH never waited on the lock"
                    time.sleep(0.02)
            process.send_signal(sent)
            time.sleep(0.5)
            assert process.poll() is None, "the server did not wait for the request in flight"
            holder.rollback()  # the lock goes; the PATCH goes on
        writer.join(30)
        process.wait(30)
    finally:
        returncode, err = stop(process)
    assert len(answers) == 1 and isinstance(answers[0], httpx.Response), answers
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["settings"]["max_order_attempts"] == 8
    assert returncode == code, err
    assert "Traceback" not in err
    with psycopg.connect(migrated_db) as conn:
        assert lifecycle.resolve(conn, "risk", draft.id).settings.max_order_attempts == 8


def test_it_will_not_listen_beyond_loopback_before_anyone_can_sign_in(migrated_db, tmp_path):
    port = free_port()
    refused = run(migrated_db, tmp_path, "--host", "0.0.0.0", "--port", str(port))
    assert refused.returncode == 2
    one_error_line(refused, "error: refusing to listen on 0.0.0.0 ")
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        principals.create_token(conn, "ops", "admin", actor="tests")
    process = start(migrated_db, tmp_path, port, "--host", "0.0.0.0")
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
    finally:
        code, err = stop(process)
    assert code == 0, err


def test_pending_migrations_are_refused_unless_it_is_told_to_apply_them(db_at, tmp_path):
    url = db_at(11)
    port = free_port()
    refused = run(url, tmp_path, "--port", str(port))
    assert refused.returncode == 1
    one_error_line(refused, "error: the database has pending migrations (V12, V13, V14)")
    process = start(url, tmp_path, port, "--migrate")
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
    finally:
        code, err = stop(process)
    assert code == 0 and "applied V12, V13, V14" in err, err
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('walltrack_auth.api_tokens') IS NOT NULL").fetchone()[0]


def test_a_certificate_without_its_key_is_a_usage_error(migrated_db, tmp_path):
    (tmp_path / "cert.pem").write_text("not read: refused before")
    result = run(migrated_db, tmp_path, "--ssl-certfile", str(tmp_path / "cert.pem"), "--port", str(free_port()))
    assert result.returncode == 2
    one_error_line(result, "error: give both --ssl-certfile and --ssl-keyfile")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("neither the cryptography package nor openssl is here to make a certificate")
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    return _with_cryptography(folder)


def _with_cryptography(folder: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file


def test_it_serves_https_with_strict_transport_security(migrated_db, tmp_path):
    cert, key = _self_signed(tmp_path)
    port = free_port()
    process = start(migrated_db, tmp_path, port, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    try:
        ready = wait_ready(process, f"https://127.0.0.1:{port}", verify=False)
        assert ready.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/api/v1/readyz", timeout=2)
    finally:
        code, err = stop(process)
    assert code == 0, err


def test_a_first_run_prints_a_one_time_setup_link_for_the_first_admin(migrated_db, tmp_path):
    import re

    process = subprocess.Popen(
        [str(CLI), "--database-url", migrated_db, "serve", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "/setup?code=" in line:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(30), "".join(lines)
        banner = next(line for line in lines if line.startswith("serving walltrack-config on"))
        link = re.search(r"(http://127\.0\.0\.1:(\d+)/setup\?code=[\w-]+)", "".join(lines))
        assert link, lines
        assert f":{link[2]} " in banner  # --port 0: the banner and the link name the port really bound
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            page = browser.get(link[1])
            assert page.status_code == 200 and "first admin" in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            code = link[1].split("code=")[1]
            done = browser.post(f"http://127.0.0.1:{link[2]}/setup", data={
                "csrf": csrf[1] if csrf else "", "code": code, "name": "root-admin",
                "password": "a long passphrase", "again": "a long passphrase"})
            assert done.status_code == 303 and done.headers["location"] == "/"
            assert "httponly" in done.headers["set-cookie"].lower()
            assert browser.get(f"http://127.0.0.1:{link[2]}/").status_code == 200  # signed in
            again = httpx.get(link[1])
            assert again.status_code == 403 and "used already" in again.text
        with psycopg.connect(migrated_db) as conn:
            assert [(u.name, u.role) for u in principals.users(conn)] == [("root-admin", "admin")]
    finally:
        code, _ = stop(process)
    assert code == 0
    assert not any("Traceback" in line for line in lines)


def test_no_setup_link_once_a_user_exists(migrated_db, tmp_path):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        principals.add_user(conn, "alice", "admin", "a long passphrase", actor="tests")
    port = free_port()
    process = start(migrated_db, tmp_path, port)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        refused = httpx.get(f"http://127.0.0.1:{port}/setup?code=anything")
        assert refused.status_code == 403
    finally:
        code, err = stop(process)
    assert code == 0 and "setup?code=" not in err
