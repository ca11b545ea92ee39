//! A real PostgreSQL for tests: a throwaway cluster started by the tests
//! themselves, or the server `DATABASE_URL` names.
//!
//! - Without `DATABASE_URL`, the first test that asks starts a cluster of
//!   this test process (`initdb` + `pg_ctl` from the machine's PostgreSQL:
//!   `/usr/lib/postgresql/*/bin`, `pg_config --bindir` or `PATH`) in a
//!   temporary directory, with trust authentication, on a free port of
//!   127.0.0.1; as the `postgres` OS user when the tests run as root
//!   (`initdb` refuses root). A watchdog stops it and removes the directory
//!   when the test process exits, however it exits.
//! - Each test gets a fresh database, a copy of a template that is already
//!   migrated ([`fresh_database`]), or an empty one ([`empty_database`]).
//! - No PostgreSQL binaries: the test fails with one line naming the Debian
//!   package to install. It never passes silently.
//!
//! Tests that restart the server start a [`Cluster`] of their own.

use reportbot::store::PgStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The one line a test fails with when PostgreSQL is missing.
pub const MISSING: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found: install the \
     Debian package postgresql-15 (apt-get install postgresql-15), or set DATABASE_URL";

/// A server the tests can create databases on.
pub struct Server {
    /// `postgres://postgres@127.0.0.1:PORT` (no database).
    base: String,
    /// The database `DATABASE_URL` named (the administrative connection).
    admin_db: String,
    template_ready: Mutex<bool>,
}

/// A running cluster in a temporary directory.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    server: Server,
}

/// One fresh database, dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    /// `postgres://…/name`, for `REPORTBOT_DB`.
    pub url: String,
    /// The administrative connection's URL, to drop the database.
    admin: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Off any async thread; a server already gone is fine.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

enum Shared {
    Url(Server),
    Cluster(Cluster),
}

impl Shared {
    fn server(&self) -> &Server {
        match self {
            Shared::Url(s) => s,
            Shared::Cluster(c) => &c.server,
        }
    }
}

fn shared() -> &'static Server {
    let shared = SHARED.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Server::from_url(&url).map(Shared::Url),
        _ => Cluster::start().map(Shared::Cluster),
    });
    match shared {
        Ok(s) => s.server(),
        Err(e) => panic!("{e}"),
    }
}

/// A new database with the current schema, for one test.
pub fn fresh_database() -> TestDatabase {
    shared().fresh_database()
}

/// A new empty database (no schema), for one test.
pub fn empty_database() -> TestDatabase {
    shared().empty_database()
}

/// Run SQL on a test database (setting up what the store cannot).
pub fn execute(db: &TestDatabase, sql: &str) {
    let mut client = connect(&db.url);
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    close(client);
}

/// The server's message of an error (the bare error says "db error").
pub fn describe(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.to_string())
}

/// A plain client on a test database.
pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Close a client off any async thread (its runtime cannot be dropped there).
pub fn close(client: postgres::Client) {
    let _ = std::thread::spawn(move || drop(client)).join();
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl Server {
    fn from_url(url: &str) -> Result<Server, String> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres");
        let auth = match config.get_password() {
            Some(p) => format!("{user}:{}", String::from_utf8_lossy(p)),
            None => user.to_string(),
        };
        Ok(Server {
            base: format!("postgres://{auth}@{host}:{port}"),
            admin_db: config.get_dbname().unwrap_or("postgres").to_string(),
            template_ready: Mutex::new(false),
        })
    }

    fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base)
    }

    fn admin(&self) -> postgres::Client {
        connect(&self.url(&self.admin_db))
    }

    /// A name no other test (or test process) uses.
    fn new_name(&self) -> String {
        format!(
            "rbtest_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        )
    }

    fn template_name() -> String {
        format!("rbtemplate_{}", std::process::id())
    }

    pub fn fresh_database(&self) -> TestDatabase {
        // The template: created and migrated once per test process.
        // Creating from one template is serialised: PostgreSQL refuses to
        // copy a database somebody is connected to.
        let mut ready = self
            .template_ready
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let template = Self::template_name();
        if !*ready {
            let mut admin = self.admin();
            for sql in [
                format!("DROP DATABASE IF EXISTS {template}"),
                format!("CREATE DATABASE {template}"),
            ] {
                admin
                    .batch_execute(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
            }
            close(admin);
            let url = self.url(&template);
            let store = std::thread::spawn(move || PgStore::open(&url).map(drop))
                .join()
                .unwrap_or_else(|_| panic!("migrating the template panicked"));
            store.unwrap_or_else(|e| panic!("migrate the template database: {e}"));
            *ready = true;
        }
        let name = self.new_name();
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .unwrap_or_else(|e| panic!("create database {name}: {}", describe(&e)));
        close(admin);
        TestDatabase {
            url: self.url(&name),
            admin: self.url(&self.admin_db),
            name,
        }
    }

    pub fn empty_database(&self) -> TestDatabase {
        let name = self.new_name();
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .unwrap_or_else(|e| panic!("create database {name}: {}", describe(&e)));
        close(admin);
        TestDatabase {
            url: self.url(&name),
            admin: self.url(&self.admin_db),
            name,
        }
    }
}

/// Where the server binaries are: `REPORTBOT_TEST_PG_BINDIR` if set, else
/// the newest of /usr/lib/postgresql/*/bin, else `pg_config --bindir`, else
/// `PATH`.
fn find_binaries() -> Option<PathBuf> {
    // Tests of this very message point it elsewhere.
    if let Some(dir) = std::env::var_os("REPORTBOT_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Some(bin);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|bin| bin.join("initdb").exists());
    if from_pg_config.is_some() {
        return from_pg_config;
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and gid of the `postgres` OS user.
fn postgres_user() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        if !out.status.success() {
            return Err(
                "tests run as root, and initdb refuses root: create the `postgres` OS user \
                 (the Debian package postgresql-15 does)"
                    .into(),
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} postgres: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

impl Cluster {
    /// initdb + pg_ctl start, in a new temporary directory.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_binaries().ok_or_else(|| MISSING.to_string())?;
        let as_postgres = running_as_root();
        let dir = std::env::temp_dir().join(format!(
            "reportbot-pg-{}-{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if as_postgres {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_postgres,
            server: Server {
                base: String::new(),
                admin_db: "postgres".into(),
                template_ready: Mutex::new(false),
            },
        };
        cluster.watchdog();
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // Fast and small: nothing here must survive a power cut.
        let mut conf = "listen_addresses = '127.0.0.1'\n\
                        unix_socket_directories = ''\n\
                        fsync = off\n\
                        synchronous_commit = off\n\
                        full_page_writes = off\n\
                        max_connections = 300\n\
                        shared_buffers = 32MB\n\
                        log_min_messages = warning\n"
            .to_string();
        // Statement counts for the benchmark, where the module exists.
        if cluster
            .bin
            .parent()
            .is_some_and(|dir| dir.join("lib/pg_stat_statements.so").exists())
        {
            conf.push_str("shared_preload_libraries = 'pg_stat_statements'\n");
        }
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.server.base = format!("postgres://postgres@127.0.0.1:{}", cluster.port);
                    return Ok(cluster);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Run a PostgreSQL program (as `postgres` when we are root).
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let port = format!("-c port={}", self.port);
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &port,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| format!("{e}\nserver log:\n{}", self.log()))
    }

    /// Stop (fast: sessions are cut) and start again on the same port.
    pub fn restart(&self) {
        self.stop();
        self.pg_ctl_start()
            .unwrap_or_else(|e| panic!("restart PostgreSQL: {e}"));
    }

    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        )
        .unwrap_or_else(|e| panic!("stop PostgreSQL: {e}"));
    }

    pub fn start_again(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|e| panic!("start PostgreSQL: {e}"));
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server and removes its directory once this process is gone
    /// (a test binary never runs destructors of statics; a killed one none).
    fn watchdog(&self) {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- '{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        } else {
            format!(
                "'{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f '{data}/postmaster.pid' ]; then {stop} >/dev/null 2>&1; fi; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.display(),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", p.display()))
}

/// Wait until `f` holds (polling), or panic with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
