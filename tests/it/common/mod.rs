//! The harness: a temp dir with `config/`, `data/` and `home/`, a real `tollgate serve` on port 0
//! in it, and a way to run the real binary against that server with a clean environment.
//!
//! With `TOLLGATE_TEST_DATABASE_URL` (an admin URL of a throwaway Postgres cluster), each test
//! environment gets a database of its own, dropped at its end, and its servers keep everything
//! there (`TOLLGATE_DATABASE_URL`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// How long a server may take to start, and a command to finish, before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A URL where nothing listens.
pub const DOWN_URL: &str = "http://127.0.0.1:1";

/// What a command printed and how it exited. The functions that run a command are
/// `#[must_use]`; the assertions return the output for chaining and are not.
#[derive(Debug, Clone)]
pub struct Output {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`tollgate {}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Output {
    /// Asserts the exit code; returns the output for more checks.
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(self.code, expected, "unexpected exit code\n{self}");
        self
    }

    /// Asserts success (exit 0).
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts `needle` appears nowhere in stdout or stderr.
    #[track_caller]
    pub fn never_shows(self, needle: &str) -> Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "the output shows {needle:?}\n{self}"
        );
        self
    }

    /// Asserts the CLI.md error shape: an `error:` line first and a `hint:` line.
    #[track_caller]
    pub fn error_and_hint(self) -> Self {
        assert!(
            self.stderr.starts_with("error: ") || self.stderr.contains("\nerror: "),
            "no `error:` line\n{self}"
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("hint: ")),
            "no `hint:` line\n{self}"
        );
        self
    }

    /// The first `error: ` line, without the prefix.
    #[track_caller]
    pub fn error_line(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("no `error:` line\n{self}"))
            .to_string()
    }
}

/// How the server ended.
#[derive(Debug)]
pub struct ServerExit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running `tollgate serve`.
struct Server {
    child: Child,
    url: String,
    /// The key printed on first start, if any.
    first_key: Option<String>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<()>>,
    stderr_text: Arc<Mutex<String>>,
}

impl Server {
    fn start(env: &TestEnv, addr: &str, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--addr", addr];
        args.extend_from_slice(extra);
        let mut child = env
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tollgate serve");
        let (err_tx, err_rx) = mpsc::channel::<String>();
        let (out_tx, out_rx) = mpsc::channel::<String>();
        let stderr_text = Arc::new(Mutex::new(String::new()));
        // Keeps draining stderr for the server's whole life, so the pipe never fills.
        let stderr = {
            let pipe = child.stderr.take().expect("piped stderr");
            let text = stderr_text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    text.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = err_tx.send(line);
                }
            })
        };
        let stdout = {
            let pipe = child.stdout.take().expect("piped stdout");
            std::thread::spawn(move || {
                let mut all = String::new();
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    all.push_str(&format!("{line}\n"));
                    let _ = out_tx.send(line);
                }
                all
            })
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut created_key = false;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match err_rx.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("Created the first admin API key") {
                        created_key = true;
                    }
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        assert!(url.starts_with("http://127.0.0.1:"), "odd line: {line}");
                        break url.to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!(
                        "tollgate serve did not say `listening on` within {START_TIMEOUT:?}; stderr:\n{}",
                        stderr_text.lock().unwrap()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    panic!(
                        "tollgate serve ended before listening ({status:?}); stderr:\n{}",
                        stderr_text.lock().unwrap()
                    );
                }
            }
        };
        let first_key = created_key.then(|| first_line(&out_rx, deadline, &stderr_text));
        // Serving for real (and so past installing its signal handlers) once it answers.
        let (status, body) = http_request(&url, "GET", "/v1/health", &[], None);
        assert_eq!(status, 200, "health: {body}");
        Server {
            child,
            url,
            first_key,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_text,
        }
    }

    /// SIGKILL: the process gets no chance to finish anything.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (a hard kill after 10 s).
    fn stop(mut self) -> ServerExit {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().expect("wait for the killed server");
                }
            }
        };
        let stdout = self.stdout.take().map(|t| t.join().unwrap_or_default());
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        let stderr = self.stderr_text.lock().unwrap().clone();
        ServerExit {
            status,
            stdout: stdout.unwrap_or_default(),
            stderr,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn first_line(rx: &Receiver<String>, deadline: Instant, stderr: &Mutex<String>) -> String {
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(line) => line.trim().to_string(),
        Err(e) => panic!(
            "the server announced a new key but printed none on stdout ({e:?}); stderr:\n{}",
            stderr.lock().unwrap()
        ),
    }
}

/// The admin URL of the Postgres cluster the servers use, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var("TOLLGATE_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A database of its own for one test environment (and its peers), dropped with the last.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn create(admin_url: &str) -> TestDatabase {
        let name = format!("tg_{:016x}", rand::random::<u64>());
        let mut url = url::Url::parse(admin_url).expect("TOLLGATE_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        admin(admin_url, &format!("CREATE DATABASE {name}"));
        TestDatabase {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        }
    }

    /// The text and bytes of every column of every table, to look for what must not be stored.
    fn contents(&self) -> Vec<u8> {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls)
            .expect("connect to the test database");
        let tables: Vec<String> = client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut bytes = Vec::new();
        for table in tables {
            for row in client
                .query(&format!("SELECT * FROM {table}"), &[])
                .unwrap()
            {
                for (i, column) in row.columns().iter().enumerate() {
                    match *column.type_() {
                        postgres::types::Type::BYTEA => {
                            bytes.extend(row.get::<_, Option<Vec<u8>>>(i).unwrap_or_default())
                        }
                        postgres::types::Type::TEXT => bytes.extend(
                            row.get::<_, Option<String>>(i)
                                .unwrap_or_default()
                                .into_bytes(),
                        ),
                        _ => {}
                    }
                    bytes.push(b'\n');
                }
            }
        }
        bytes
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        admin(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn admin(url: &str, sql: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to TOLLGATE_TEST_DATABASE_URL: {e}"));
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A temp dir, and optionally a server using it.
pub struct TestEnv {
    /// Declared first so it is dropped first: servers stop before their database goes.
    server: Option<Server>,
    database: Option<Arc<TestDatabase>>,
    dir: tempfile::TempDir,
    /// The server's address, `http://127.0.0.1:PORT` (empty without a server).
    pub url: String,
    /// The admin key the server printed on first start (empty without a server).
    pub admin_key: String,
}

impl TestEnv {
    /// A fresh temp dir and a server started in it, which printed the first admin key.
    pub fn new() -> TestEnv {
        let mut env = TestEnv::offline();
        env.admin_key = env
            .start_server(&[])
            .expect("a first start prints the admin key on stdout");
        env
    }

    /// Starts `tollgate serve --addr 127.0.0.1:0 EXTRA...`; returns the key it printed, if any.
    pub fn start_server(&mut self, extra: &[&str]) -> Option<String> {
        self.start_server_on("127.0.0.1:0", extra)
    }

    /// Starts `tollgate serve --addr ADDR EXTRA...` (e.g. on the port of a stopped server).
    pub fn start_server_on(&mut self, addr: &str, extra: &[&str]) -> Option<String> {
        assert!(self.server.is_none(), "a server is already running");
        let server = Server::start(self, addr, extra);
        self.url = server.url.clone();
        let key = server.first_key.clone();
        self.server = Some(server);
        key
    }

    /// A fresh temp dir and no server.
    pub fn offline() -> TestEnv {
        TestEnv::on(test_database_url().map(|url| Arc::new(TestDatabase::create(&url))))
    }

    /// Another node on this environment's Postgres database, not started: a temp dir of its
    /// own with the same master key, and the same admin key. `None` on SQLite (one node).
    pub fn peer(&self) -> Option<TestEnv> {
        let mut peer = TestEnv::on(Some(self.database.clone()?));
        let key = "master.key";
        std::fs::copy(self.data_dir().join(key), peer.data_dir().join(key))
            .expect("copy the master key");
        peer.admin_key = self.admin_key.clone();
        Some(peer)
    }

    fn on(database: Option<Arc<TestDatabase>>) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("tollgate-it-")
            .tempdir()
            .expect("temp dir");
        for sub in ["config", "data", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create a test dir");
        }
        TestEnv {
            dir,
            server: None,
            database,
            url: String::new(),
            admin_key: String::new(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// Runs SQL on the environment's Postgres database.
    pub fn sql(&self, sql: &str) {
        let db = self.database.as_ref().expect("a Postgres environment");
        admin(&db.url, sql);
    }

    /// Whether the servers keep everything in Postgres.
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The URL of this environment's Postgres database, if it has one.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|db| db.url.as_str())
    }

    /// Everything the store holds as bytes: SQLite's files (the database and its WAL), or the
    /// text and byte columns of every Postgres table.
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(db) = &self.database {
            return db.contents();
        }
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.data_dir()).expect("the data dir") {
            let path = entry.expect("a data dir entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tollgate.db"))
            {
                bytes.extend(std::fs::read(&path).expect("read a database file"));
            }
        }
        assert!(
            !bytes.is_empty(),
            "no tollgate.db in {}",
            self.data_dir().display()
        );
        // Records' bodies and hook results are kept compressed, several records to a row of
        // `log_payloads` (src/store/payloads.rs): their stored form (src/store/packed.rs) is a
        // format byte, 1 for LZ4, then an LZ4 block with its length before it.
        let db = rusqlite::Connection::open_with_flags(
            self.data_dir().join("tollgate.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the store");
        let mut payloads = db.prepare("SELECT data FROM log_payloads").unwrap();
        for data in payloads.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
            let data = data.unwrap();
            assert_eq!(data.first(), Some(&1), "a payload is an LZ4 block");
            bytes.extend(
                lz4_flex::decompress_size_prepended(&data[1..]).expect("a payload decompresses"),
            );
        }
        bytes
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root().join("config")
    }

    /// Writes a file under the temp dir (commands run there, so `name` works as a relative path).
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.root().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's folder");
        }
        std::fs::write(&path, contents).expect("write a test file");
        name.to_string()
    }

    /// The binary with a clean environment: only what the brief of the harness names.
    pub fn command(&self, args: &[&str]) -> Command {
        let root = self.root();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", root.join("home"))
            .env("TOLLGATE_CONFIG_DIR", root.join("config"))
            .env("TOLLGATE_DATA_DIR", root.join("data"))
            .env("TOLLGATE_NO_KEYRING", "1")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .current_dir(root);
        if let Some(db) = &self.database {
            cmd.env("TOLLGATE_DATABASE_URL", &db.url);
        }
        cmd
    }

    /// A command to adjust before running.
    pub fn cmd(&self, args: &[&str]) -> Cmd<'_> {
        Cmd {
            env: self,
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: Vec::new(),
            stdin: None,
        }
    }

    /// Runs `tollgate ARGS` with stdin closed (not a terminal).
    #[must_use]
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }

    /// Runs `tollgate ARGS` with `stdin` piped in.
    #[must_use]
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.cmd(args).stdin(stdin).run()
    }

    /// Runs `tollgate ARGS` as another key (`TOLLGATE_API_KEY`).
    #[must_use]
    pub fn run_with_key(&self, key: &str, args: &[&str]) -> Output {
        self.cmd(args).key(key).run()
    }

    /// Stops the server with SIGTERM and reports how it ended.
    pub fn stop(&mut self) -> ServerExit {
        self.server.take().expect("a running server").stop()
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        self.server.take().expect("a running server").kill();
    }

    /// Stops the server (if running) and starts it again on the same data dir, on a new port.
    /// Returns the key it printed, if any. The `local` context is pointed at the new port.
    pub fn restart(&mut self) -> Option<String> {
        if let Some(server) = self.server.take() {
            let exit = server.stop();
            assert!(exit.status.success(), "server exit: {exit:?}");
        }
        let key = self.start_server(&[]);
        let url = self.url.clone();
        self.run(&["context", "add", "local", "--url", &url]).ok();
        key
    }

    /// Creates a key with the admin key; returns `(id, secret)`.
    #[track_caller]
    pub fn create_key(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["keys", "create", "--name", name, "-o", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args).ok();
        let v = out.json();
        (
            v["id"].as_str().expect("id").to_string(),
            v["key"].as_str().expect("key").to_string(),
        )
    }

    /// An admin API call with the admin key and a JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> HttpReply {
        let text = body.map(|b| b.to_string());
        http_send(
            &self.url,
            method,
            path,
            &[("x-portkey-api-key", &self.admin_key)],
            text.as_deref(),
        )
    }

    /// A raw HTTP request to the server.
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        http_request(&self.url, method, path, headers, None)
    }
}

/// A command being built: extra environment, piped stdin.
pub struct Cmd<'a> {
    env: &'a TestEnv,
    args: Vec<String>,
    vars: Vec<(String, String)>,
    stdin: Option<String>,
}

impl Cmd<'_> {
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    pub fn key(self, key: &str) -> Self {
        self.var("TOLLGATE_API_KEY", key)
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// Runs the command to completion (failing the test after a minute).
    #[must_use]
    pub fn run(self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = self.env.command(&args);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tollgate");
        if let Some(text) = self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for tollgate") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`tollgate {}` did not finish in {RUN_TIMEOUT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Output {
            args: self.args,
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

/// A plain HTTP/1.1 request over a TcpStream: `(status, body)`.
pub fn http_request(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let host = base_url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

/// `tgk_…` + the last four characters: how a key is masked.
pub fn masked(secret: &str) -> String {
    let prefix_end = secret
        .chars()
        .take(8)
        .position(|c| c == '-' || c == '_')
        .map_or(3, |i| i + 1);
    format!("{}…{}", &secret[..prefix_end], &secret[secret.len() - 4..])
}

/// Replaces the random six characters that end every `pc-…` config slug with `XXXXXX`, keeping
/// the text's length (so table columns stay aligned).
pub fn normalise_slugs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("pc-") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        let slug = &tail[..len];
        match slug.rfind('-') {
            Some(dash) if dash > 2 && slug.len() - dash - 1 == 6 => {
                out.push_str(&slug[..=dash]);
                out.push_str("XXXXXX");
            }
            _ => out.push_str(slug),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The string values of a JSON array field, e.g. `scopes`.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn slug_filter_keeps_lengths() {
    assert_eq!(
        normalise_slugs("│ prod   pc-prod-7u55rf   unchanged │"),
        "│ prod   pc-prod-XXXXXX   unchanged │"
    );
    assert_eq!(normalise_slugs("pc-a-b"), "pc-a-b");
    assert_eq!(masked("tgk_abcdefghijklmnop1234"), "tgk_…1234");
    assert_eq!(masked("sk-live-SECRETVALUE123456"), "sk-…3456");
}

// --- routing helpers ---

/// An HTTP answer with its headers (names lower-cased) and its body, de-chunked.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl std::fmt::Display for HttpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

impl HttpReply {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e})\n{self}"))
    }

    /// The `data:` payloads of a server-sent-events body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.body
            .split("\n\n")
            .flat_map(|event| event.lines())
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.trim().to_string())
            .collect()
    }
}

fn read_http_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read an HTTP line");
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// Reads one HTTP/1.1 response: the body by content-length, chunked, or up to EOF.
fn read_http_reply(r: &mut impl BufRead, head_only: bool) -> HttpReply {
    let status_line = read_http_line(r);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_http_line(r);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut reply = HttpReply {
        status,
        headers,
        body: String::new(),
    };
    if head_only {
        return reply;
    }
    let mut body = Vec::new();
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let size_line = read_http_line(r);
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
            if size == 0 {
                read_http_line(r);
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).expect("read a chunk");
            body.extend_from_slice(&chunk);
            read_http_line(r);
        }
    } else if let Some(len) = reply.header("content-length") {
        let mut chunk = vec![0; len.parse().expect("a content-length")];
        r.read_exact(&mut chunk).expect("read the body");
        body = chunk;
    } else {
        r.read_to_end(&mut body).expect("read the body");
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

fn write_http_request(
    w: &mut impl Write,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    close: bool,
) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    w.write_all(request.as_bytes()).expect("send");
}

fn host_of(base_url: &str) -> &str {
    base_url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/')
}

/// A plain HTTP/1.1 request (`Connection: close`) that keeps the answer's headers.
pub fn http_send(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpReply {
    let host = host_of(base_url);
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write_http_request(&mut stream, host, method, path, headers, body, true);
    read_http_reply(&mut BufReader::new(stream), false)
}

/// One persistent HTTP/1.1 connection for many sequential requests.
pub struct HttpConn {
    host: String,
    reader: BufReader<std::net::TcpStream>,
}

impl HttpConn {
    pub fn connect(base_url: &str) -> HttpConn {
        let host = host_of(base_url).to_string();
        let stream = std::net::TcpStream::connect(&host).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        HttpConn {
            host,
            reader: BufReader::new(stream),
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpReply {
        let host = self.host.clone();
        write_http_request(
            self.reader.get_mut(),
            &host,
            method,
            path,
            headers,
            body,
            false,
        );
        read_http_reply(&mut self.reader, false)
    }
}

/// The text of chat-completion stream chunks (`data:` payloads), joined.
pub fn streamed_text(data: &[String]) -> String {
    data.iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// Records are written moments after the answer: waits until `GET /v1/logs?QUERY` lists `n`
/// of them.
#[track_caller]
pub fn wait_for_logs(env: &TestEnv, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = env.admin("GET", &format!("/v1/logs?limit=1000&{query}"), None);
        assert_eq!(reply.status, 200, "GET /v1/logs?{query}: {}", reply.body);
        let data = reply.json()["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= n || Instant::now() > deadline {
            assert_eq!(data.len(), n, "records for {query:?}: {data:#?}");
            return data;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp dir and a server started with `tollgate serve EXTRA...` (e.g. `--retry-base-ms 10`).
pub fn gateway_env(extra: &[&str]) -> TestEnv {
    let mut env = TestEnv::offline();
    env.admin_key = env
        .start_server(extra)
        .expect("a first start prints the admin key on stdout");
    env
}

/// `tollgate integrations create --slug SLUG --provider openai --base-url BASE_URL/v1`.
#[track_caller]
pub fn add_openai_integration(env: &TestEnv, slug: &str, base_url: &str) {
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            slug,
            "--provider",
            "openai",
            "--base-url",
            &format!("{base_url}/v1"),
            "--api-key-stdin",
        ],
        "sk-upstream-test\n",
    )
    .ok();
}

/// An OpenAI chat completion answering `text`.
pub fn openai_chat_json(model: &str, text: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    })
}

/// OpenAI chat stream events (each `data: ...\n\n`): one chunk per piece of text, a finish
/// chunk, a usage chunk and `[DONE]`.
pub fn openai_chat_sse(model: &str, pieces: &[&str]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        serde_json::json!({
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        })
    };
    let mut events = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let delta = if i == 0 {
            serde_json::json!({"role": "assistant", "content": piece})
        } else {
            serde_json::json!({"content": piece})
        };
        events.push(chunk(delta, Value::Null));
    }
    events.push(chunk(serde_json::json!({}), serde_json::json!("stop")));
    events.push(serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    }));
    let mut out: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    out.push("data: [DONE]\n\n".into());
    out
}

// ---- Requests with headers and bodies, and server-sent events (used by tests/it/providers) ----

/// An HTTP answer with its headers: names lower-cased, in the order sent; a chunked body is
/// decoded.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl std::fmt::Display for HttpAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

impl HttpAnswer {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e})\n{self}"))
    }

    /// The body read as server-sent events.
    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(&self.body)
    }
}

/// One server-sent event: its `event:` field, if any, and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a text/event-stream body into events; comments (`: keep-alive`) are skipped.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push(SseEvent {
                    event: event.take(),
                    data,
                });
            }
            event = None;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    if let Some(data) = data {
        events.push(SseEvent { event, data });
    }
    events
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&bytes[..eol]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        bytes = &bytes[eol + 2..];
        if size == 0 {
            break;
        }
        let size = size.min(bytes.len());
        out.extend_from_slice(&bytes[..size]);
        bytes = &bytes[(size + 2).min(bytes.len())..];
    }
    out
}

/// A plain HTTP/1.1 request over a TcpStream, keeping the answer's headers.
pub fn http_full(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpAnswer {
    let host = base_url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let raw = &response[end + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    HttpAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// POSTs `body` as JSON to the server with these headers.
pub fn post_json(env: &TestEnv, path: &str, headers: &[(&str, &str)], body: &Value) -> HttpAnswer {
    http_full(&env.url, "POST", path, headers, Some(&body.to_string()))
}

#[test]
fn sse_and_chunked_bodies_are_read() {
    let events = parse_sse(": ping\n\nevent: a\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n");
    assert_eq!(
        events,
        vec![
            SseEvent {
                event: Some("a".into()),
                data: "1\n2".into()
            },
            SseEvent {
                event: None,
                data: "[DONE]".into()
            }
        ]
    );
    assert_eq!(dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"), b"abcde");
}
