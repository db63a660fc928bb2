//! Starting the real servers the tests talk to. Each `tests/support/<name>/start WORKDIR
//! CACHEDIR` script prints `KEY=VALUE` facts and `READY`, then watches this process and stops
//! its server when we exit. A missing server fails the test with instructions — never a skip.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

pub struct ExternalServer {
    pub name: &'static str,
    pub facts: HashMap<String, String>,
    pub workdir: PathBuf,
    _child: Child,
}

impl ExternalServer {
    pub fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{} printed no {key}", self.name))
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Removes work folders of earlier runs whose test process is gone.
fn sweep_old_workdirs(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pid = stem.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !PathBuf::from(format!("/proc/{pid}")).exists()
        {
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// A server of its own for one test (slapd starts in < 1 s); stopped when dropped.
pub fn private(name: &'static str) -> ExternalServer {
    private_with(name, &[])
}

/// The same, with variables for its start script (e.g. `ROSTER_SLAPD_SELF_SIGNED=1`).
pub fn private_with(name: &'static str, env: &[(&str, &str)]) -> ExternalServer {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    start_as(
        name,
        &format!("{name}-private{n}"),
        Duration::from_secs(60),
        env,
    )
    .unwrap_or_else(|m| panic!("{m}"))
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        // SIGTERM runs the script's trap, which stops its server before the script exits
        // (SIGKILL left PostgreSQL clusters behind: runuser passes no signal on); SIGKILL
        // only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self._child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self._child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self._child.kill();
        let _ = self._child.wait();
    }
}

pub fn start(name: &'static str, timeout: Duration) -> Result<ExternalServer, String> {
    start_as(name, name, timeout, &[])
}

fn start_as(
    name: &'static str,
    instance: &str,
    timeout: Duration,
    env: &[(&str, &str)],
) -> Result<ExternalServer, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
        .join("start");
    let root = target_dir().join("test-servers");
    static SWEEP: OnceLock<()> = OnceLock::new();
    SWEEP.get_or_init(|| sweep_old_workdirs(&root));
    let workdir = root.join(format!("{instance}-{}", std::process::id()));
    let cache = target_dir().join("test-cache");
    std::fs::create_dir_all(&workdir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let stderr_path = workdir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(&script)
        .arg(&workdir)
        .arg(&cache)
        .env("ROSTER_TEST_PARENT_PID", std::process::id().to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut facts = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "READY" {
                let _ = tx.send(Some(facts));
                return;
            }
            if let Some((k, v)) = line.split_once('=') {
                facts.insert(k.to_owned(), v.to_owned());
            }
        }
        let _ = tx.send(None);
    });
    let failure = |why: &str| {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        format!(
            "the {name} test server did not start ({why}).\n{log}\n\
             Install and start everything the tests need with `tests/run` (as root)."
        )
    };
    match rx.recv_timeout(timeout) {
        Ok(Some(facts)) => Ok(ExternalServer {
            name,
            facts,
            workdir,
            _child: child,
        }),
        Ok(None) => Err(failure("it exited")),
        Err(_) => {
            let _ = child.kill();
            Err(failure(&format!("no READY within {} s", timeout.as_secs())))
        }
    }
}

/// One shared instance per test run; the first test that asks starts it.
fn shared(
    cell: &'static OnceLock<Result<ExternalServer, String>>,
    name: &'static str,
    secs: u64,
) -> &'static ExternalServer {
    match cell.get_or_init(|| start(name, Duration::from_secs(secs))) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

pub fn postgres() -> &'static ExternalServer {
    static CELL: OnceLock<Result<ExternalServer, String>> = OnceLock::new();
    shared(&CELL, "postgres", 60)
}

pub fn slapd() -> &'static ExternalServer {
    static CELL: OnceLock<Result<ExternalServer, String>> = OnceLock::new();
    shared(&CELL, "slapd", 60)
}

pub fn samba() -> &'static ExternalServer {
    static CELL: OnceLock<Result<ExternalServer, String>> = OnceLock::new();
    shared(&CELL, "samba", 240)
}

pub fn oidc() -> &'static ExternalServer {
    static CELL: OnceLock<Result<ExternalServer, String>> = OnceLock::new();
    shared(&CELL, "oidc", 120)
}

pub fn chromedriver() -> &'static ExternalServer {
    static CELL: OnceLock<Result<ExternalServer, String>> = OnceLock::new();
    shared(&CELL, "chromium", 60)
}
