//! The shared study store: one PostgreSQL database that workers on several machines claim trials from.

use super::storage::{Sql, Val};
use crate::{Error, Result};
use postgres::types::{ToSql, Type};

pub struct Postgres {
    client: postgres::Client,
    url: String,
}

/// Every claim takes this transaction-scoped advisory lock, so claims from all workers run one at a time.
const CLAIM_LOCK: i64 = 0x636f_6e76_6b69_74;

impl Postgres {
    pub fn connect(url: &str) -> Result<Postgres> {
        let client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| {
            let why = std::error::Error::source(&e).map_or(String::new(), |s| format!(" ({s})"));
            Error::Config(format!(
                "cannot reach the study database {}: {e}{why}; check that the server runs and accepts this user \
                 (README: Hyperparameter search on several machines)",
                redact(url)
            ))
        })?;
        Ok(Postgres { client, url: url.to_string() })
    }

    fn err(&self, e: postgres::Error) -> Error {
        Error::Config(format!("study database {}: {e}", redact(&self.url)))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
            let user = &url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn boxed(v: &Val) -> Box<dyn ToSql + Sync> {
    match v {
        Val::I(i) => Box::new(*i),
        Val::F(x) => Box::new(*x),
        Val::T(s) => Box::new(s.clone()),
        Val::Null => Box::new(None::<String>),
    }
}

fn cell(row: &postgres::Row, i: usize) -> std::result::Result<Val, postgres::Error> {
    let t = row.columns()[i].type_();
    Ok(if *t == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::I)
    } else if *t == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |v| Val::I(v as i64))
    } else if *t == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map_or(Val::Null, Val::F)
    } else {
        row.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::T)
    })
}

impl Sql for Postgres {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let owned: Vec<_> = params.iter().map(boxed).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.client.execute(sql, &refs).map_err(|e| self.err(e))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>> {
        let owned: Vec<_> = params.iter().map(boxed).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(sql, &refs).map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| cell(r, i)).collect::<std::result::Result<Vec<_>, _>>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    fn begin_exclusive(&mut self) -> Result<()> {
        self.client.batch_execute("BEGIN").map_err(|e| self.err(e))?;
        self.client.batch_execute(&format!("SELECT pg_advisory_xact_lock({CLAIM_LOCK})")).map_err(|e| self.err(e))
    }

    fn commit(&mut self) -> Result<()> {
        self.client.batch_execute("COMMIT").map_err(|e| self.err(e))
    }

    fn rollback(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(super::redact("postgres://me:secret@db:5432/s"), "postgres://me:***@db:5432/s");
        assert_eq!(super::redact("postgres://me@db/s"), "postgres://me@db/s");
    }
}
