//! The database: one code path over SQLite (embedded default) and PostgreSQL.
//! `DbConnection` is a diesel `MultiConnection`; statements one backend dialect lacks in
//! the generated multi-backend (RETURNING, ON CONFLICT, FTS) go through `with_backend!`,
//! which compiles the same code once per concrete connection.

pub mod ids;
pub mod models;
pub mod paging;
pub mod schema;
pub mod text_enum;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of whichever backend is in use.
#[macro_export]
macro_rules! with_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Pg($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend is chosen by the URL scheme, so a failure names the real cause.
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(format!(
                "`{}` is neither sqlite://FILE nor postgres://…",
                mask_url(url)
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// `sqlite://roster.db` → `roster.db`; `sqlite:///var/lib/roster.db` → `/var/lib/roster.db`.
pub fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
}

/// Hides a password in a connection URL.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// SQLite counts every allocation under one process-wide mutex (its default
/// `SQLITE_DEFAULT_MEMSTATUS`), so pages served from many connections at once queue on it
/// (`cargo bench --bench users_page`). Roster never reads those counters. The setting only
/// takes before SQLite initialises, so it is made before the process's first connection.
fn sqlite_without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config may not run beside other SQLite calls; every connection is
        // opened here, after this, and the Once makes concurrent first opens wait for it.
        // Once SQLite is initialised it only answers SQLITE_MISUSE, which changes nothing.
        let _ = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
    });
}

/// How long a SQLite statement waits for another connection's lock before it fails.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

impl DbConnection {
    pub fn open(url: &str) -> ConnectionResult<DbConnection> {
        match Backend::from_url(url).map_err(ConnectionError::BadConnection)? {
            Backend::Sqlite => {
                sqlite_without_memory_statistics();
                let mut conn = diesel::SqliteConnection::establish(sqlite_path(url))?;
                // busy_timeout first: WAL needs a lock, and pooled connections open together.
                // No mmap: every database page a sync or a search touched through it counted
                // in Roster's resident memory (a first sync beside another profile's
                // 100,000 users peaked at 244 MB instead of 195); reads go through the OS
                // page cache, which is not Roster's, and searches measured the same.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA mmap_size = 0;"
                ))
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
            Backend::Postgres => Ok(DbConnection::Pg(diesel::PgConnection::establish(url)?)),
        }
    }

    /// Like `open`, with a one-line error that names the database (password masked).
    pub fn open_explained(url: &str) -> anyhow::Result<DbConnection> {
        DbConnection::open(url).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to database {}: {}",
                mask_url(url),
                one_line(&e)
            )
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Sqlite(_) => Backend::Sqlite,
            DbConnection::Pg(_) => Backend::Postgres,
        }
    }

    /// Runs a write that may be skipped: on SQLite it does not wait for the write lock, and
    /// `None` says another writer held it. A synchronisation holds that one lock for as long
    /// as it applies (half a minute for a million users); a page that only records a visit
    /// must not wait for it, nor tie up a pooled connection meanwhile.
    pub fn write_unless_busy<T>(
        &mut self,
        f: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> QueryResult<Option<T>> {
        if let DbConnection::Pg(_) = self {
            return f(self).map(Some);
        }
        self.batch_execute("PRAGMA busy_timeout = 0")?;
        let result = f(self);
        // The connection goes back to the pool with the usual wait.
        self.batch_execute(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))?;
        match result {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("database is locked") =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// A transaction that reads, then writes, and must not fail because another writer got
    /// in between. SQLite's default BEGIN takes the write lock only at the first write, and
    /// a reader whose snapshot went stale meanwhile fails at once ("database is locked",
    /// no busy wait); BEGIN IMMEDIATE takes it at the start, so writers queue instead.
    /// It is begun through diesel's transaction manager, so a model function that opens a
    /// transaction of its own inside `f` gets a savepoint.
    pub fn write_transaction<T, E>(
        &mut self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let DbConnection::Sqlite(sqlite) = self else {
            return self.transaction(f);
        };
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        let result = f(self);
        let DbConnection::Sqlite(sqlite) = self else {
            return result;
        };
        // As diesel's own `transaction`: commit on success, roll back on an error.
        match result {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(sqlite)?;
                Ok(value)
            }
            Err(e) => match AnsiTransactionManager::rollback_transaction(sqlite) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
                Err(rollback) => Err(rollback.into()),
            },
        }
    }

    pub fn run_migrations(&mut self) -> anyhow::Result<usize> {
        let applied = match self {
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        }
        .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
        Ok(applied.len())
    }
}

/// Refreshes PostgreSQL's planner statistics of the users and groups a sync writes, inside the
/// caller's transaction, so they are committed with the rows. Autovacuum would analyse them
/// only a minute or more later; until then a users table that grew from a handful of rows
/// to 100,000 is planned as nearly empty, and a search most users match sorted every match
/// instead of walking the user-name index (1.5 s a page, `cargo bench --bench sync`).
/// Memberships are only ever read by key, planned well without them. ANALYZE holds its lock
/// until the commit: another instance's sync reaching its own ANALYZE meanwhile waits for
/// this one to commit (readers and other writers do not). SQLite plans without statistics.
pub fn refresh_statistics(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        // Only the columns lists filter and order by: the whole table costs twice as long
        // (160 against 75 ms at 100,000 users), most of it in columns no plan looks at.
        c.batch_execute(
            "ANALYZE users (search_text, username_key, domain, profile_id, disabled, \
             directory_disabled, mfa_required, mfa_enrolled_at); ANALYZE directory_groups",
        )?;
    }
    Ok(())
}

/// An r2d2 manager that opens the backend named by the URL (see `DbConnection::open`).
pub struct ConnectionManager {
    url: String,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        DbConnection::open(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// The database handle the web layer and jobs share: a pool plus a way to run blocking
/// diesel code off the async threads.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    /// SQLite takes one writer at a time and makes the others poll its file lock, sleeping
    /// 1–100 ms between tries while holding a pooled connection; this instance's writers
    /// queue here instead (see `write`). Other processes still meet the file lock.
    writer: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

impl Db {
    /// Connects once directly (so an unreachable database fails fast with its own message),
    /// runs pending migrations, then builds the pool.
    pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let masked = mask_url(url);
        let mut first = DbConnection::open_explained(url)?;
        first.run_migrations()?;
        let refolded = models::users::refold_search_text(&mut first)?;
        if refolded > 0 {
            tracing::info!(
                users = refolded,
                "search text folded for accent-free search"
            );
        }
        let backend = first.backend();
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(ConnectionManager {
                url: url.to_owned(),
            })
            .map_err(|e| anyhow::anyhow!("cannot connect to database {masked}: {e}"))?;
        Ok(Db {
            pool,
            backend,
            writer: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn get(&self) -> Result<PooledConnection, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking diesel work on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` in one write transaction (`DbConnection::write_transaction`), after this
    /// instance's other SQLite writers: for the short writes of busy paths such as sign-in.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let _turn = match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        };
        self.run(move |c| c.write_transaction(f)).await
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds since the Unix epoch: how every timestamp is stored.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
