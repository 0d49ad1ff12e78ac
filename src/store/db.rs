//! One connection over SQLite or Postgres, so each statement is written once where the two
//! dialects agree. Statements use SQLite's placeholders (`?N`, or `?` for the next number);
//! on Postgres they become `$N`, and each statement is prepared once per connection. Postgres
//! must see each parameter's type where it is used: `?1 IS NULL` alone does not tell it, so such
//! a test is written `CAST(?1 AS TEXT) IS NULL`.
//!
//! Phase 1 of Postgres support connects without TLS (docs/postgres.md).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use postgres::types::{FromSql, IsNull, ToSql, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    Pg(Box<Pg>),
}

/// A Postgres client with its prepared statements. A lost connection is made again on the
/// next call, outside a transaction.
pub struct Pg {
    /// `None` only while being dropped.
    client: Option<postgres::Client>,
    url: String,
    /// Settings of the session, made again after a reconnect.
    session: &'static str,
    statements: HashMap<String, postgres::Statement>,
    /// When the connection last answered; a connection idle for longer is checked before use,
    /// so one the server or the network dropped meanwhile is made again instead of failing a
    /// call.
    used: Instant,
    /// A call failed in a way that says the connection is gone (the client may not know yet).
    lost: bool,
    /// Between `BEGIN` and its end: a lost connection is then an error, never made again (the
    /// rest of the transaction would run outside it).
    in_transaction: bool,
    /// The last failed reconnection: calls within [`RECONNECT_PAUSE`] of it fail at once with
    /// its error instead of each waiting for a connection that just failed.
    failed: Option<(Instant, String)>,
}

/// Unless the URL sets them: how long a connection attempt may take, and how long sent data
/// may go unacknowledged or an idle connection unanswered before the connection counts as
/// lost. A dead server or network is so noticed in seconds, not at the system's TCP defaults
/// (minutes to hours).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
/// A connection idle this long is checked (one empty query) before its next call.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a failed reconnection answers for the calls that follow it.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Prepared statements kept per connection; list filters make new ones, so the cache is
/// emptied when it grows past this.
const STATEMENTS: usize = 256;

#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Pg(postgres::Error),
    /// A column's value is not of the type asked for, or a parameter of the column's.
    Type(String),
    /// The database cannot be reached: why.
    Unreachable(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => e.fmt(f),
            Error::Pg(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => {
                    // "error connecting to server", then why (refused, timed out...).
                    e.fmt(f)?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            Error::Type(m) | Error::Unreachable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Pg(e)
    }
}

impl Error {
    /// Whether the database could not be reached or cannot take writes now (a lost connection,
    /// a server shutting down, a full disk, a lock held elsewhere), as opposed to a statement
    /// it refused.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unreachable(_) => true,
            Error::Pg(e) => match e.code() {
                // Connection exceptions, insufficient resources, the server shutting down.
                Some(code) => ["08", "53", "57P"]
                    .iter()
                    .any(|class| code.code().starts_with(class)),
                None => connection_lost(e),
            },
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                use rusqlite::ErrorCode::*;
                matches!(
                    f.code,
                    DatabaseBusy
                        | DatabaseLocked
                        | DiskFull
                        | SystemIoFailure
                        | CannotOpen
                        | ReadOnly
                        | PermissionDenied
                )
            }
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Error::Pg(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// Whether a unique violation is on `table.column` (Postgres names the constraint
    /// `table_column_key`).
    pub fn violates(&self, table: &str, column: &str) -> bool {
        match self {
            Error::Pg(e) => e
                .as_db_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c == format!("{table}_{column}_key")),
            other => other.to_string().contains(&format!("{table}.{column}")),
        }
    }
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

/// What can be a parameter; `params!` calls it on each argument.
pub trait ToParam {
    fn param(&self) -> Param<'_>;
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn param(&self) -> Param<'_> {
                Param::Int(*self as i64)
            }
        }
    )*};
}
int_params!(i64, i32, u16, u32, u64, usize);

impl ToParam for f64 {
    fn param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for bool {
    fn param(&self) -> Param<'_> {
        Param::Bool(*self)
    }
}

impl ToParam for str {
    fn param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for String {
    fn param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for Cow<'_, str> {
    fn param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for [u8] {
    fn param(&self) -> Param<'_> {
        Param::Blob(Cow::Borrowed(self))
    }
}

impl ToParam for Vec<u8> {
    fn param(&self) -> Param<'_> {
        Param::Blob(Cow::Borrowed(self))
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, T::param)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn param(&self) -> Param<'_> {
        (**self).param()
    }
}

impl ToParam for Param<'_> {
    fn param(&self) -> Param<'_> {
        match self {
            Param::Text(t) => Param::Text(Cow::Borrowed(t)),
            Param::Blob(b) => Param::Blob(Cow::Borrowed(b)),
            Param::Null => Param::Null,
            Param::Int(i) => Param::Int(*i),
            Param::Real(x) => Param::Real(*x),
            Param::Bool(b) => Param::Bool(*b),
        }
    }
}

/// `[Param; N]` of the arguments, borrowing them.
macro_rules! params {
    ($($x:expr),* $(,)?) => {
        [$($crate::store::db::ToParam::param(&$x)),*]
    };
}
pub(crate) use params;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Real(x) => ValueRef::Real(*x),
            Param::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Param::Text(t) => ValueRef::Text(t.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Postgres is strict about types where SQLite is not: a parameter is written as the type the
/// statement gives its place (an integer as `int4` or `float8`, a bool as `int8`...).
impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        match (self, ty) {
            (Param::Null, _) => Ok(IsNull::Yes),
            (Param::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Param::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Param::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Param::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Param::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Param::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Param::Real(x), &Type::FLOAT4) => (*x as f32).to_sql(ty, out),
            (Param::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Param::Bool(b), &Type::INT8) => i64::from(*b).to_sql(ty, out),
            (Param::Text(t), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(t.as_bytes());
                Ok(IsNull::No)
            }
            (Param::Text(t), _) if is_text(ty) || *ty == Type::JSON => {
                out.extend_from_slice(t.as_bytes());
                Ok(IsNull::No)
            }
            (Param::Blob(b), &Type::BYTEA) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            (p, ty) => Err(format!("cannot pass {p:?} as a Postgres {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// A column's value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'r> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'r str),
    Blob(&'r [u8]),
}

impl<'r> FromSql<'r> for Value<'r> {
    fn from_sql(ty: &Type, raw: &'r [u8]) -> std::result::Result<Value<'r>, BoxError> {
        Ok(match *ty {
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw),
            Type::JSONB => Value::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?),
            ref t if is_text(t) || *t == Type::JSON => Value::Text(std::str::from_utf8(raw)?),
            ref t => return Err(format!("no reader for Postgres type {t}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Value<'r>, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Option<Self>;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::Int(i) => i.try_into().ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_values!(i64, i32, u16, u32, u64);

impl FromValue for f64 {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Real(x) => Some(x),
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(i != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Text(t) => Some(t.to_string()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.to_vec()),
            Value::Text(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A row being read.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    pub fn value(&self, i: usize) -> Result<Value<'_>> {
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) => {
                        Value::Text(std::str::from_utf8(t).map_err(|e| Error::Type(e.to_string()))?)
                    }
                    ValueRef::Blob(b) => Value::Blob(b),
                })
            }
            Row::Pg(r) => Ok(r.try_get(i)?),
        }
    }

    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.value(i)?;
        T::from_value(v).ok_or_else(|| {
            Error::Type(format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Runs a call of the synchronous Postgres client, which runs a runtime of its own and so must
/// not be called on a thread that is running an async task.
pub(super) fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}

/// `?N` and `?` placeholders as `$N`, outside string literals and quoted names.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut quote, mut highest, mut chars) = (None, 0u32, sql.chars().peekable());
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n = digits.parse().unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// An error of the connection itself rather than of a statement: closed, broken or silent.
fn connection_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || std::error::Error::source(e).is_some_and(|c| c.is::<std::io::Error>())
        || e.to_string().starts_with("timeout")
}

impl Pg {
    pub fn connect(url: &str) -> std::result::Result<Pg, String> {
        let client = connect_client(&pg_config(url)?, url)?;
        Ok(Pg {
            client: Some(client),
            url: url.to_string(),
            session: "",
            statements: HashMap::new(),
            used: Instant::now(),
            lost: false,
            in_transaction: false,
            failed: None,
        })
    }

    /// Runs `sql` (settings such as `SET …`) now and after every reconnect.
    pub fn set_session(&mut self, sql: &'static str) -> Result<()> {
        self.batch(sql)?;
        self.session = sql;
        Ok(())
    }

    /// Statements without parameters, separated by semicolons.
    fn batch(&mut self, sql: &str) -> Result<()> {
        self.ensure_connected()?;
        self.run(|c| c.batch_execute(sql))
    }

    /// Connects again if the connection was lost (or, idle for a while, does not answer now).
    fn ensure_connected(&mut self) -> Result<()> {
        let client = self.client.as_mut().expect("only taken on drop");
        let lost = self.lost
            || client.is_closed()
            || (self.used.elapsed() >= CHECK_AFTER_IDLE
                && !self.in_transaction
                && blocking(|| client.is_valid(CHECK_TIMEOUT)).is_err());
        if lost {
            if self.in_transaction {
                return Err(Error::Unreachable(
                    "the connection to Postgres was lost during a transaction".into(),
                ));
            }
            if let Some((at, why)) = &self.failed {
                if at.elapsed() < RECONNECT_PAUSE {
                    return Err(Error::Unreachable(why.clone()));
                }
            }
            match Pg::connect(&self.url) {
                Ok(fresh) => {
                    let session = self.session;
                    *self = fresh;
                    if !session.is_empty() {
                        self.set_session(session)?;
                    }
                }
                Err(why) => {
                    self.failed = Some((Instant::now(), why.clone()));
                    return Err(Error::Unreachable(why));
                }
            }
        }
        self.used = Instant::now();
        Ok(())
    }

    /// The statement prepared on the current connection (made again first if lost, which
    /// empties the cache).
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        self.ensure_connected()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = numbered(sql);
        let statement = self.run(|c| c.prepare(&text))?;
        if self.statements.len() >= STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Runs `f` on the client as it is; an error that says the connection is lost makes the
    /// next call connect again.
    fn run<R: Send>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client) -> std::result::Result<R, postgres::Error> + Send,
    ) -> Result<R> {
        let client = self.client.as_mut().expect("only taken on drop");
        blocking(|| f(client)).map_err(|e| {
            let e = Error::Pg(e);
            self.lost |= e.is_unavailable();
            e
        })
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<postgres::Row>> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let statement = self.statement(sql)?;
        self.run(|c| c.query(&statement, &refs))
    }

    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<usize> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let statement = self.statement(sql)?;
        Ok(self.run(|c| c.execute(&statement, &refs))? as usize)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // The client owns a runtime, which may not be dropped on an async task's thread.
        if let Some(client) = self.client.take() {
            blocking(move || drop(client));
        }
    }
}

/// The connection settings of a Postgres URL, with the timeouts it leaves unset (or at the
/// driver's default): [`CONNECT_TIMEOUT`] and the TCP ones after it.
pub fn pg_config(url: &str) -> std::result::Result<postgres::Config, String> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| format!("the database URL is not a valid Postgres URL: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    // The driver's defaults cannot be told apart from the same values given in the URL.
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    Ok(config)
}

/// Connects with `config`; errors name `url` without its password.
pub fn connect_client(
    config: &postgres::Config,
    url: &str,
) -> std::result::Result<postgres::Client, String> {
    blocking(|| config.connect(postgres::NoTls)).map_err(|e| {
        let e = Error::Pg(e);
        format!("cannot connect to Postgres at {}: {e}", redacted(url))
    })
}

/// The URL without its password, to show in messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the given URL".into(),
    }
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Pg(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> Result<usize> {
        match self {
            Db::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params))?),
            Db::Pg(pg) => pg.execute(sql, params),
        }
    }

    /// Every row, each read by `f`.
    pub fn query_map<T>(
        &mut self,
        sql: &str,
        params: &[Param],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Db::Pg(pg) => pg
                .query(sql, params)?
                .iter()
                .map(|r| f(&Row::Pg(r)))
                .collect(),
        }
    }

    /// The first row, if any.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[Param],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                rows.next()?.map(|r| f(&Row::Sqlite(r))).transpose()
            }
            Db::Pg(pg) => pg
                .query(sql, params)?
                .first()
                .map(|r| f(&Row::Pg(r)))
                .transpose(),
        }
    }

    /// The first row, which must exist.
    pub fn query_row<T>(
        &mut self,
        sql: &str,
        params: &[Param],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, f)?
            .ok_or(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Statements without parameters, separated by semicolons.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(pg) => pg.batch(sql),
        }
    }

    /// A transaction, rolled back unless committed.
    pub fn transaction(&mut self) -> Result<Tx<'_>> {
        self.batch("BEGIN")?;
        self.set_in_transaction(true);
        Ok(Tx {
            db: self,
            open: true,
        })
    }

    fn set_in_transaction(&mut self, open: bool) {
        if let Db::Pg(pg) = self {
            pg.in_transaction = open;
        }
    }

    /// Ends a transaction with `COMMIT` or `ROLLBACK`.
    fn end(&mut self, sql: &str) -> Result<()> {
        let ended = self.batch(sql);
        self.set_in_transaction(false);
        ended
    }
}

pub struct Tx<'a> {
    db: &'a mut Db,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.open = false;
        self.db.end("COMMIT")
    }
}

impl Deref for Tx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.db.end("ROLLBACK");
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// `TOLLGATE_TEST_DATABASE_URL`: an admin URL of a throwaway Postgres cluster.
    pub fn test_database_url() -> Option<String> {
        crate::env::var("TOLLGATE_TEST_DATABASE_URL")
    }

    /// An in-memory SQLite database, and a Postgres one when a test cluster is given.
    fn databases() -> Vec<Db> {
        let mut dbs = vec![Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap())];
        if let Some(url) = test_database_url() {
            dbs.push(Db::Pg(Box::new(Pg::connect(&url).unwrap())));
        }
        dbs
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT ?1, ?, '?', \"a?\" WHERE x = ?3 AND y = ?"),
            "SELECT $1, $2, '?', \"a?\" WHERE x = $3 AND y = $4"
        );
        assert_eq!(numbered("a = ?2 OR b = ?2"), "a = $2 OR b = $2");
    }

    #[test]
    fn statements_read_and_write_each_type_on_each_backend() {
        for mut db in databases() {
            let backend = db.backend();
            let blob = if backend == Backend::Sqlite {
                "BLOB"
            } else {
                "BYTEA"
            };
            let (int, real) = match backend {
                Backend::Sqlite => ("INTEGER", "REAL"),
                Backend::Postgres => ("BIGINT", "DOUBLE PRECISION"),
            };
            db.batch(&format!(
                "CREATE TEMP TABLE t (i {int}, x {real}, b {int}, s TEXT, o TEXT, v {blob})"
            ))
            .unwrap();
            let none: Option<String> = None;
            let n = db
                .execute(
                    "INSERT INTO t (i, x, b, s, o, v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &params![42u32, 1.5, true, "text", none, vec![0u8, 255]],
                )
                .unwrap();
            assert_eq!(n, 1, "{backend:?}");
            let row = db
                .query_row(
                    "SELECT i, x, b, s, o, v, COUNT(*) FROM t WHERE s = ? GROUP BY i, x, b, s, o, v",
                    &params!["text"],
                    |r| {
                        Ok((
                            r.get::<i64>(0)?,
                            r.get::<f64>(1)?,
                            r.get::<bool>(2)?,
                            r.get::<String>(3)?,
                            r.get::<Option<String>>(4)?,
                            r.get::<Vec<u8>>(5)?,
                            r.get::<u64>(6)?,
                        ))
                    },
                )
                .unwrap();
            assert_eq!(
                row,
                (42, 1.5, true, "text".into(), None, vec![0, 255], 1),
                "{backend:?}"
            );
            assert!(db
                .query_row("SELECT s FROM t", &[], |r| r.get::<i64>(0))
                .is_err());

            // A transaction dropped uncommitted leaves nothing behind; a committed one stays.
            {
                let mut tx = db.transaction().unwrap();
                tx.execute("DELETE FROM t", &[]).unwrap();
            }
            let count = |db: &mut Db| {
                db.query_row("SELECT COUNT(*) FROM t", &[], |r| r.get::<i64>(0))
                    .unwrap()
            };
            assert_eq!(count(&mut db), 1, "{backend:?}");
            let mut tx = db.transaction().unwrap();
            tx.execute("DELETE FROM t WHERE i = ?1", &params![42])
                .unwrap();
            tx.commit().unwrap();
            assert_eq!(count(&mut db), 0, "{backend:?}");
            let found = db
                .query_opt("SELECT i FROM t", &[], |r| r.get::<i64>(0))
                .unwrap();
            assert_eq!(found, None);
            let all = db
                .query_map("SELECT 1 UNION ALL SELECT 2", &[], |r| r.get::<i64>(0))
                .unwrap();
            assert_eq!(all, [1, 2]);
        }
    }

    #[test]
    fn unique_violations_are_recognised_on_each_backend() {
        for mut db in databases() {
            db.batch("CREATE TEMP TABLE u (slug TEXT UNIQUE)").unwrap();
            db.execute("INSERT INTO u (slug) VALUES (?1)", &params!["a"])
                .unwrap();
            let e = db
                .execute("INSERT INTO u (slug) VALUES (?1)", &params!["a"])
                .unwrap_err();
            assert!(e.is_unique_violation(), "{e}");
            assert!(e.violates("u", "slug"), "{e}");
            assert!(!e.violates("u", "name"), "{e}");
        }
    }

    #[test]
    fn a_lost_connection_is_made_again_but_never_inside_a_transaction() {
        let Some(url) = test_database_url() else {
            eprintln!("note: TOLLGATE_TEST_DATABASE_URL is unset; the Postgres part is skipped");
            return;
        };
        let mut admin = Db::Pg(Box::new(Pg::connect(&url).unwrap()));
        let mut db = Db::Pg(Box::new(Pg::connect(&url).unwrap()));
        let pid = |db: &mut Db| db.query_row("SELECT pg_backend_pid()", &[], |r| r.get::<i64>(0));
        let mut kill = |pid: i64| {
            admin
                .execute("SELECT pg_terminate_backend(?1)", &params![pid])
                .unwrap()
        };
        let first = pid(&mut db).unwrap();
        kill(first);
        // The call that finds the connection gone fails; the next one connects again and
        // prepares its statement on the new connection.
        let e = pid(&mut db).unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        let second = pid(&mut db).unwrap();
        assert_ne!(first, second);

        let mut tx = db.transaction().unwrap();
        kill(second);
        assert!(pid(&mut tx).is_err());
        let e = pid(&mut tx).unwrap_err();
        assert!(e.to_string().contains("lost during a transaction"), "{e}");
        drop(tx);
        assert!(pid(&mut db).unwrap() != second);
    }

    #[test]
    fn a_write_lock_held_elsewhere_makes_sqlite_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE")
            .unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let mut db = Db::Sqlite(conn);
        let e = db
            .execute("INSERT INTO t (x) VALUES (?1)", &params![1])
            .unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        let e = db
            .execute("INSERT INTO nope (x) VALUES (1)", &[])
            .unwrap_err();
        assert!(!e.is_unavailable(), "{e}");
    }

    #[test]
    fn a_wrong_url_or_an_absent_server_is_said_plainly() {
        let e = Pg::connect("mysql://nope").err().unwrap();
        assert!(e.contains("not a valid Postgres URL"), "{e}");
        let e = Pg::connect("postgres://u:secret@127.0.0.1:1/db")
            .err()
            .unwrap();
        assert!(e.starts_with("cannot connect to Postgres at"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }
}
