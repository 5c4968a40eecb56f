//! What the CLI suites share: a data directory with a master key file, the
//! binary run as an operator runs it, and a `tuaton serve` of the test's.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tuaton_keys::{MasterKey, SoftwareBackend};
use tuaton_store::{Store, StoreOptions};

/// A data directory with a fresh master key file, as an operator sets one up.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        MasterKey::create_file(&dir.path().join("master.key")).unwrap();
        Setup { dir }
    }

    pub fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn master_key_file(&self) -> String {
        self.dir.path().join("master.key").display().to_string()
    }

    /// Runs `tuaton` with the data dir and master key file set, plus `env`.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tuaton"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TUATON_DATA_DIR", self.data_dir())
            .env("TUATON_MASTER_KEY_FILE", self.master_key_file());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let o = self.run(args, &[]);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    pub async fn store(&self) -> Store {
        Store::open_sqlite(
            &self.dir.path().join("data").join("tuaton.db"),
            &StoreOptions::default(),
        )
        .await
        .unwrap()
    }

    pub fn backend(&self) -> SoftwareBackend {
        let master = MasterKey::from_file(Path::new(&self.master_key_file())).unwrap();
        SoftwareBackend::open(self.dir.path().join("data").join("keys"), master).unwrap()
    }
}

pub fn tuaton_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tuaton"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `tuaton serve` process of the test's, stopped (SIGTERM, then wait) when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub listen: String,
}

impl Served {
    pub fn start(s: &Setup, env: &[(&str, &str)]) -> Served {
        let listen = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut c = Command::new(env!("CARGO_BIN_EXE_tuaton"));
        c.arg("serve")
            .current_dir(s.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TUATON_DATA_DIR", s.data_dir())
            .env("TUATON_MASTER_KEY_FILE", s.master_key_file())
            .env("TUATON_LISTEN", &listen)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        Served {
            child: c.spawn().unwrap(),
            listen,
        }
    }

    pub async fn get(&self, path: &str) -> Option<reqwest::Response> {
        reqwest::get(format!("http://{}{path}", self.listen))
            .await
            .ok()
    }

    pub async fn kids(&self) -> Vec<String> {
        let Some(r) = self.get("/.well-known/jwks.json").await else {
            return Vec::new();
        };
        let v: Value = r.json().await.unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it holds; false if it never did within `limit`.
pub async fn within<F: std::future::Future<Output = bool>>(
    limit: std::time::Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
