//! The `roster` binary itself: start-up messages, exit codes, `admin create`, bad settings.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn roster(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROSTER_LOG", "warn")
        .env("ROSTER_LISTEN", "127.0.0.1:0");
    cmd
}

fn run(cmd: &mut Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run roster");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unreachable_database_gives_one_masked_line_and_fails() {
    let dir = tempfile::tempdir().expect("dir");
    for command in ["serve", "migrate", "check-config"] {
        let (code, _, err) = run(
            roster(dir.path())
                .arg(command)
                .env(
                    "DATABASE_URL",
                    "postgres://roster:hunter2@127.0.0.1:1/roster",
                )
                .env(
                    "ROSTER_MASTER_KEY",
                    roster::crypto::MasterKey::generate().to_base64().expose(),
                ),
            "",
        );
        assert_ne!(code, 0, "{command}");
        assert_eq!(err.trim().lines().count(), 1, "{command}: {err}");
        assert!(
            err.contains("postgres://roster:****@127.0.0.1:1/roster"),
            "{command}: {err}"
        );
        assert!(
            !err.contains("hunter2") && !err.contains("panicked"),
            "{command}: {err}"
        );
    }
}

#[test]
fn malformed_config_file_names_file_key_and_problem() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("custom.toml"),
        "session_idle_minutes = \"soon\"\n",
    )
    .expect("write");
    let (code, _, err) = run(
        roster(dir.path()).args(["--config", "custom.toml", "check-config"]),
        "",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("custom.toml") && err.contains("session_idle_minutes"),
        "{err}"
    );
    let (code, _, err) = run(
        roster(dir.path()).args(["--config", "missing.toml", "check-config"]),
        "",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("missing.toml") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn admin_create_reads_the_password_from_stdin_and_the_key_must_match() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = run(
        roster(dir.path()).args(["admin", "create", "root"]),
        "root's long password\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Administrator `root` created."));
    // The embedded default made its key file, private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("roster.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (code, _, err) = run(
        roster(dir.path()).args(["admin", "create", "root"]),
        "root's long password\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(
        roster(dir.path()).args(["admin", "create", "weak"]),
        "password1\n",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("at least 8") || err.contains("common"),
        "{err}"
    );

    let other = roster::crypto::MasterKey::generate();
    let (code, _, err) = run(
        roster(dir.path())
            .arg("serve")
            .env("ROSTER_MASTER_KEY", other.to_base64().expose()),
        "",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("wrong master key") && err.contains(other.id()),
        "{err}"
    );
    let (code, _, err) = run(
        roster(dir.path())
            .arg("serve")
            .env("ROSTER_MASTER_KEY", "not base64!"),
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("not valid base64"), "{err}");
    std::fs::remove_file(dir.path().join("roster.key")).expect("remove key");
    let (code, _, err) = run(roster(dir.path()).arg("serve"), "");
    assert_ne!(code, 0);
    assert!(
        err.contains("no master key") && err.contains("expects key id"),
        "{err}"
    );
}

/// The README's run command: a fresh directory, `roster`, a printed link, a browser-like
/// client that follows it and signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_start_prints_where_to_open_it_and_the_setup_link_works() {
    roster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut child = roster(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start roster");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let running = lines.next().expect("a line").expect("text");
    assert!(
        running.starts_with("Roster is running at http://127.0.0.1:"),
        "{running}"
    );
    assert!(
        running.contains("on SQLite (sqlite://roster.db)"),
        "{running}"
    );
    let _ = lines.next();
    let link = lines
        .next()
        .expect("link line")
        .expect("text")
        .trim()
        .to_owned();
    assert!(link.contains("/setup?token="), "{link}");
    let client = crate::support::app::client();
    let page = client
        .get(&link)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    let token = crate::support::app::csrf_token_in(&page);
    let setup_token = link.split("token=").nth(1).expect("token");
    let base = link.split("/setup").next().expect("base").to_owned();
    let res = client
        .post(format!("{base}/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("token", setup_token),
            ("username", "admin"),
            ("password", "the chosen admin password"),
            ("password_confirm", "the chosen admin password"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 303);
    let dashboard = client
        .get(format!("{base}/admin"))
        .send()
        .await
        .expect("GET");
    assert_eq!(dashboard.status().as_u16(), 200);
    let _ = child.kill();
    let _ = child.wait();
}

trait Expose {
    fn expose(&self) -> String;
}
impl Expose for secrecy::SecretString {
    fn expose(&self) -> String {
        use secrecy::ExposeSecret;
        self.expose_secret().to_owned()
    }
}

#[test]
fn secrets_rotate_writes_a_new_key_file_and_reseals_with_it() {
    roster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let (code, _, err) = run(
        roster(dir.path()).args(["admin", "create", "root"]),
        "root's long password\n",
    );
    assert_eq!(code, 0, "{err}");
    // One stored secret, sealed with the embedded default's key file.
    let key_text = std::fs::read_to_string(dir.path().join("roster.key")).expect("key file");
    let old = roster::crypto::MasterKey::from_base64(&key_text).expect("key");
    let url = format!("sqlite://{}", dir.path().join("roster.db").display());
    let mut conn = roster::db::DbConnection::open(&url).expect("db");
    let id = roster::secrets::store(
        &mut conn,
        &old,
        "test",
        &secrecy::SecretString::from("s3cr3t value"),
    )
    .expect("store");
    drop(conn);

    let (code, out, err) = run(
        roster(dir.path()).args(["secrets", "rotate", "--new-key-file", "new.key"]),
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Re-encrypted 1 secret(s)"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("new.key"))
        .expect("new key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The old key file no longer starts Roster; the new one does, and opens the secret.
    let (code, _, err) = run(roster(dir.path()).arg("serve"), "");
    assert_ne!(code, 0);
    assert!(err.contains("wrong master key"), "{err}");
    let (code, _, err) = run(
        roster(dir.path())
            .args(["admin", "create", "second"])
            .env("ROSTER_MASTER_KEY_FILE", "new.key"),
        "second's long password\n",
    );
    assert_eq!(code, 0, "{err}");
    let new_text = std::fs::read_to_string(dir.path().join("new.key")).expect("new key");
    let new = roster::crypto::MasterKey::from_base64(&new_text).expect("key");
    let mut conn = roster::db::DbConnection::open(&url).expect("db");
    let value = roster::secrets::reveal(&mut conn, &new, id).expect("reveal");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&value), "s3cr3t value");

    // An existing file is never overwritten.
    let (code, _, err) = run(
        roster(dir.path())
            .args(["secrets", "rotate", "--new-key-file", "roster.key"])
            .env("ROSTER_MASTER_KEY_FILE", "new.key"),
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot create master key file"), "{err}");
}

/// The access log names each request's method and path, on standard error, without colour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_name_the_method_and_go_to_stderr() {
    roster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut child = roster(dir.path())
        .env("ROSTER_LOG", "info")
        .env(
            "ROSTER_ADMIN_PASSWORD",
            "an admin password for the log test",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roster");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let running = lines.next().expect("a line").expect("text");
    let base = running
        .split("running at ")
        .nth(1)
        .and_then(|r| r.split('/').take(3).collect::<Vec<_>>().join("/").into())
        .unwrap_or_default();
    let client = crate::support::app::client();
    let res = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    let _ = client
        .post(format!("{base}/login"))
        .form(&[("username", "x")])
        .send()
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"GET /login\" 200"), "{err}");
    assert!(err.contains("\"POST /login\""), "{err}");
    assert!(
        !err.contains("\"m /login\"") && !err.contains('\u{1b}'),
        "{err}"
    );
}
