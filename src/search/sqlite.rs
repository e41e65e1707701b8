//! The default study store: one SQLite file in WAL mode (readers never block the writer, and a killed search
//! loses nothing it committed), shared safely by the worker processes of one machine.

use super::storage::{Sql, Val};
use crate::{Error, Result};
use rusqlite::types::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Sqlite {
    conn: rusqlite::Connection,
    path: PathBuf,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create the folder: {e}")))?;
        }
        let err = |e: rusqlite::Error| Error::file(path, format!("not a usable SQLite study database: {e}"));
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        // Other workers hold the write lock for a claim's few milliseconds: wait rather than fail.
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        Ok(Sqlite { conn, path: path.to_path_buf() })
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::file(&self.path, format!("database error: {e}"))
    }
}

/// SQLite numbers its parameters `?1`; the shared statements write them PostgreSQL's way, `$1`.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

fn to_value(v: &Val) -> Value {
    match v {
        Val::I(i) => Value::Integer(*i),
        Val::F(x) => Value::Real(*x),
        Val::T(s) => Value::Text(s.clone()),
        Val::Null => Value::Null,
    }
}

fn from_value(v: Value) -> Val {
    match v {
        Value::Integer(i) => Val::I(i),
        Value::Real(x) => Val::F(x),
        Value::Text(s) => Val::T(s),
        Value::Null | Value::Blob(_) => Val::Null,
    }
}

impl Sql for Sqlite {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let p = rusqlite::params_from_iter(params.iter().map(to_value));
        self.conn.execute(&dialect(sql), p).map(|n| n as u64).map_err(|e| self.err(e))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
        let run = || -> rusqlite::Result<Vec<Vec<Val>>> {
            let mut stmt = self.conn.prepare(&dialect(sql))?;
            let n = stmt.column_count();
            let rows = stmt.query_map(rusqlite::params_from_iter(params.iter().map(to_value)), |row| {
                (0..n).map(|i| row.get::<_, Value>(i).map(from_value)).collect()
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn begin_exclusive(&mut self) -> Result<()> {
        // IMMEDIATE takes the write lock now, so a claim's read and write see no other claim in between.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.err(e))
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}
