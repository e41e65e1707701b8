//! Where a study lives: a real database, SQLite by default and PostgreSQL for workers on many machines, with one
//! schema and one set of statements for both (`Sql` is the little each backend must provide).
//!
//! A worker claims a trial inside a transaction that holds the study's write lock, so two workers never claim the
//! same one. A claim is a lease: the worker renews it while it trains; a trial whose lease ran out (its worker
//! crashed or was killed) is reclaimed by the next worker and run again from the start. Every write of a trial's
//! result names the worker and the attempt, so a worker that lost its lease cannot overwrite the new one's.

use super::space::Params;
use crate::{Error, Result};
use std::time::{SystemTime, UNIX_EPOCH};

/// The schema this build reads and writes; a database with another one is refused with a clear error.
pub const SCHEMA_VERSION: i64 = 1;

/// A trial whose worker died this many times (killed, out of memory, a lost machine) is marked failed rather
/// than handed out again: something about the trial itself may be killing them.
pub const MAX_ATTEMPTS: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS convkit_schema (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    space TEXT NOT NULL,
    strategy TEXT NOT NULL,
    trials BIGINT NOT NULL,
    seed BIGINT NOT NULL,
    pruner TEXT NOT NULL,
    parent TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    study TEXT NOT NULL REFERENCES studies(name),
    number BIGINT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    worker TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL,
    seed BIGINT NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION,
    duration DOUBLE PRECISION,
    val_accuracy DOUBLE PRECISION,
    val_loss DOUBLE PRECISION,
    epochs_done BIGINT,
    run_dir TEXT,
    error TEXT,
    PRIMARY KEY (study, number)
);
CREATE TABLE IF NOT EXISTS trial_epochs (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    val_accuracy DOUBLE PRECISION NOT NULL,
    val_loss DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (study, number, epoch)
);
";

/// A value crossing into or out of the database.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    I(i64),
    F(f64),
    T(String),
    Null,
}

impl Val {
    pub fn i(&self) -> Option<i64> {
        match self {
            Val::I(i) => Some(*i),
            _ => None,
        }
    }
    pub fn f(&self) -> Option<f64> {
        match self {
            Val::F(x) => Some(*x),
            Val::I(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn t(&self) -> Option<&str> {
        match self {
            Val::T(s) => Some(s),
            _ => None,
        }
    }
}

/// What a backend provides: statements with `$1`-style parameters, and a transaction holding the write lock.
pub trait Sql {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>>;
    /// Begins a transaction that no other worker's `begin_exclusive` can interleave with.
    fn begin_exclusive(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self);
}

/// A study: the recipe every trial starts from, the space it searches, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct StudySpec {
    pub name: String,
    /// The base recipe (TOML).
    pub recipe: String,
    /// The space file (TOML).
    pub space: String,
    /// "random" or "grid".
    pub strategy: String,
    /// Trials to run in all.
    pub trials: i64,
    pub seed: i64,
    /// "asha" or "none".
    pub pruner: String,
    /// The study this stage was refined from ("" for a first stage).
    pub parent: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Status {
    Running,
    Finished,
    Pruned,
    Failed,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Pruned => "pruned",
            Status::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "finished" => Status::Finished,
            "pruned" => Status::Pruned,
            "failed" => Status::Failed,
            _ => Status::Running,
        }
    }
}

/// One trial as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrialRow {
    pub number: i64,
    pub params: Params,
    pub status: Status,
    pub worker: String,
    pub attempt: i64,
    pub seed: i64,
    pub started: f64,
    pub finished: Option<f64>,
    pub duration: Option<f64>,
    /// The best validation accuracy over its epochs (what the search ranks by).
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub epochs_done: Option<i64>,
    pub run_dir: Option<String>,
    pub error: Option<String>,
    /// Validation accuracy after each epoch.
    pub curve: Vec<f64>,
}

/// A worker's claim on a trial.
#[derive(Clone, Debug)]
pub struct Claim {
    pub number: i64,
    pub params: Params,
    pub attempt: i64,
    pub seed: i64,
}

pub enum Next {
    Run(Claim),
    /// Nothing to claim now, but trials are running under other workers' leases: one may yet be reclaimed.
    Wait,
    /// Every trial of the budget is finished, pruned or failed.
    Done,
}

/// The result a worker writes when a trial ends.
pub struct Outcome {
    pub status: Status,
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub epochs_done: i64,
    pub duration: f64,
    pub run_dir: String,
    pub error: Option<String>,
}

pub struct Store {
    db: Box<dyn Sql>,
    /// Where it is, for messages.
    pub url: String,
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Store {
    /// `sqlite:PATH` (or a bare path) or `postgres://user@host:port/db`. Creates the schema on first use.
    pub fn open(url: &str) -> Result<Store> {
        let db: Box<dyn Sql> = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Box::new(super::postgres::Postgres::connect(url)?)
        } else {
            let path = url.strip_prefix("sqlite:").unwrap_or(url);
            Box::new(super::sqlite::Sqlite::open(std::path::Path::new(path))?)
        };
        let mut s = Store { db, url: url.to_string() };
        s.transaction(|db| {
            for stmt in SCHEMA.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                db.exec(stmt, &[])?;
            }
            let v = db.query("SELECT version FROM convkit_schema", &[])?;
            match v.first().and_then(|r| r[0].i()) {
                None => db.exec("INSERT INTO convkit_schema (version) VALUES ($1)", &[Val::I(SCHEMA_VERSION)]).map(|_| ()),
                Some(SCHEMA_VERSION) => Ok(()),
                Some(other) => Err(Error::Config(format!(
                    "{url}: the study database has schema version {other}; this convkit reads version {SCHEMA_VERSION}: \
                     use a convkit of the same version, or a new database"
                ))),
            }
        })?;
        Ok(s)
    }

    fn transaction<T>(&mut self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.db.begin_exclusive()?;
        match f(self.db.as_mut()) {
            Ok(v) => {
                self.db.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.db.rollback();
                Err(e)
            }
        }
    }

    pub fn study(&mut self, name: &str) -> Result<Option<StudySpec>> {
        let rows = self.db.query(
            "SELECT name, recipe, space, strategy, trials, seed, pruner, parent FROM studies WHERE name = $1",
            &[Val::T(name.into())],
        )?;
        Ok(rows.first().map(|r| StudySpec {
            name: text(&r[0]),
            recipe: text(&r[1]),
            space: text(&r[2]),
            strategy: text(&r[3]),
            trials: r[4].i().unwrap_or(0),
            seed: r[5].i().unwrap_or(0),
            pruner: text(&r[6]),
            parent: text(&r[7]),
        }))
    }

    pub fn studies(&mut self) -> Result<Vec<String>> {
        let rows = self.db.query("SELECT name FROM studies ORDER BY created", &[])?;
        Ok(rows.iter().map(|r| text(&r[0])).collect())
    }

    /// Creates the study, or checks that an existing one of that name searches the same recipe and space.
    pub fn create_study(&mut self, s: &StudySpec) -> Result<()> {
        let url = self.url.clone();
        self.transaction(|db| {
            let rows =
                db.query("SELECT recipe, space, strategy FROM studies WHERE name = $1", &[Val::T(s.name.clone())])?;
            if let Some(r) = rows.first() {
                if text(&r[0]) != s.recipe || text(&r[1]) != s.space || text(&r[2]) != s.strategy {
                    return Err(Error::Config(format!(
                        "{url}: study '{}' already exists with another recipe, space or strategy: continue it without \
                         --config/--space (convkit search --study {}), or name a new one with --study",
                        s.name, s.name
                    )));
                }
                db.exec("UPDATE studies SET trials = $1 WHERE name = $2", &[Val::I(s.trials), Val::T(s.name.clone())])?;
                return Ok(());
            }
            db.exec(
                "INSERT INTO studies (name, recipe, space, strategy, trials, seed, pruner, parent, created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    Val::T(s.name.clone()),
                    Val::T(s.recipe.clone()),
                    Val::T(s.space.clone()),
                    Val::T(s.strategy.clone()),
                    Val::I(s.trials),
                    Val::I(s.seed),
                    Val::T(s.pruner.clone()),
                    Val::T(s.parent.clone()),
                    Val::F(now()),
                ],
            )?;
            Ok(())
        })
    }

    /// Raises (or lowers) the study's trial budget.
    pub fn set_budget(&mut self, study: &str, trials: i64) -> Result<()> {
        self.db
            .exec("UPDATE studies SET trials = $1 WHERE name = $2", &[Val::I(trials), Val::T(study.into())])
            .map(|_| ())
    }

    /// The next trial for `worker`: a running trial whose lease ran out first, else a new one while the budget
    /// lasts (`params(n)` gives trial n's hyperparameters, or None when the space has no more points).
    pub fn claim(
        &mut self,
        study: &StudySpec,
        worker: &str,
        lease: f64,
        params: &dyn Fn(i64) -> Option<Params>,
    ) -> Result<Next> {
        let name = Val::T(study.name.clone());
        self.transaction(|db| {
            let t = now();
            let stale = db.query(
                "SELECT number, params, attempt, seed FROM trials WHERE study = $1 AND status = 'running' \
                 AND lease_until < $2 ORDER BY number",
                &[name.clone(), Val::F(t)],
            )?;
            for r in &stale {
                let (number, attempt) = (r[0].i().unwrap_or(0), r[2].i().unwrap_or(0) + 1);
                if attempt > MAX_ATTEMPTS {
                    let why = format!("its worker was lost {MAX_ATTEMPTS} times (killed, out of memory, or a machine gone)");
                    db.exec(
                        "UPDATE trials SET status = 'failed', finished = $1, error = $2 WHERE study = $3 AND number = $4",
                        &[Val::F(t), Val::T(why), name.clone(), Val::I(number)],
                    )?;
                    continue;
                }
                db.exec(
                    "UPDATE trials SET worker = $1, attempt = $2, lease_until = $3, started = $4 \
                     WHERE study = $5 AND number = $6",
                    &[Val::T(worker.into()), Val::I(attempt), Val::F(t + lease), Val::F(t), name.clone(), Val::I(number)],
                )?;
                db.exec("DELETE FROM trial_epochs WHERE study = $1 AND number = $2", &[name.clone(), Val::I(number)])?;
                let params = parse_params(&text(&r[1]))?;
                return Ok(Next::Run(Claim { number, params, attempt, seed: r[3].i().unwrap_or(0) }));
            }
            let next = db.query("SELECT COUNT(*) FROM trials WHERE study = $1", &[name.clone()])?;
            let number = next.first().and_then(|r| r[0].i()).unwrap_or(0);
            let running = db.query(
                "SELECT COUNT(*) FROM trials WHERE study = $1 AND status = 'running'",
                &[name.clone()],
            )?[0][0]
                .i()
                .unwrap_or(0);
            let p = if number < study.trials { params(number) } else { None };
            let Some(p) = p else { return Ok(if running > 0 { Next::Wait } else { Next::Done }) };
            let json = serde_json::to_string(&p).expect("params serialise");
            db.exec(
                "INSERT INTO trials (study, number, params, status, worker, attempt, lease_until, seed, started) \
                 VALUES ($1, $2, $3, 'running', $4, 1, $5, $6, $7)",
                &[name.clone(), Val::I(number), Val::T(json), Val::T(worker.into()), Val::F(t + lease), Val::I(study.seed), Val::F(t)],
            )?;
            Ok(Next::Run(Claim { number, params: p, attempt: 1, seed: study.seed }))
        })
    }

    /// Extends the lease; false when the trial is no longer this worker's (it was reclaimed).
    pub fn heartbeat(&mut self, study: &str, c: &Claim, worker: &str, lease: f64) -> Result<bool> {
        let n = self.db.exec(
            "UPDATE trials SET lease_until = $1 WHERE study = $2 AND number = $3 AND worker = $4 AND attempt = $5 \
             AND status = 'running'",
            &[Val::F(now() + lease), Val::T(study.into()), Val::I(c.number), Val::T(worker.into()), Val::I(c.attempt)],
        )?;
        Ok(n == 1)
    }

    pub fn record_epoch(
        &mut self,
        study: &str,
        number: i64,
        epoch: i64,
        val_accuracy: f64,
        val_loss: f64,
    ) -> Result<()> {
        let key = [Val::T(study.into()), Val::I(number), Val::I(epoch)];
        self.db.exec("DELETE FROM trial_epochs WHERE study = $1 AND number = $2 AND epoch = $3", &key)?;
        let mut p = key.to_vec();
        p.extend([Val::F(val_accuracy), Val::F(finite_or(val_loss, 1e30))]);
        self.db
            .exec(
                "INSERT INTO trial_epochs (study, number, epoch, val_accuracy, val_loss) VALUES ($1, $2, $3, $4, $5)",
                &p,
            )
            .map(|_| ())
    }

    /// Every trial's validation accuracy after `epoch` (the rung successive halving compares at).
    pub fn rung(&mut self, study: &str, epoch: i64) -> Result<Vec<f64>> {
        let rows = self.db.query(
            "SELECT val_accuracy FROM trial_epochs WHERE study = $1 AND epoch = $2",
            &[Val::T(study.into()), Val::I(epoch)],
        )?;
        Ok(rows.iter().filter_map(|r| r[0].f()).collect())
    }

    /// Writes the trial's end; false when it was no longer this worker's.
    pub fn finish(&mut self, study: &str, c: &Claim, worker: &str, o: &Outcome) -> Result<bool> {
        let t = now();
        let opt = |x: Option<f64>| x.filter(|v| v.is_finite()).map_or(Val::F(-1.0), Val::F);
        let n = self.db.exec(
            "UPDATE trials SET status = $1, finished = $2, duration = $3, val_accuracy = $4, val_loss = $5, \
             epochs_done = $6, run_dir = $7, error = $8 \
             WHERE study = $9 AND number = $10 AND worker = $11 AND attempt = $12 AND status = 'running'",
            &[
                Val::T(o.status.as_str().into()),
                Val::F(t),
                Val::F(o.duration),
                opt(o.val_accuracy),
                opt(o.val_loss),
                Val::I(o.epochs_done),
                Val::T(o.run_dir.clone()),
                Val::T(o.error.clone().unwrap_or_default()),
                Val::T(study.into()),
                Val::I(c.number),
                Val::T(worker.into()),
                Val::I(c.attempt),
            ],
        )?;
        Ok(n == 1)
    }

    /// Every trial of the study, by number, with its per-epoch curve.
    pub fn trials(&mut self, study: &str) -> Result<Vec<TrialRow>> {
        let name = Val::T(study.into());
        let rows = self.db.query(
            "SELECT number, params, status, worker, attempt, seed, started, finished, duration, val_accuracy, \
             val_loss, epochs_done, run_dir, error FROM trials WHERE study = $1 ORDER BY number",
            &[name.clone()],
        )?;
        let epochs = self.db.query(
            "SELECT number, epoch, val_accuracy FROM trial_epochs WHERE study = $1 ORDER BY number, epoch",
            &[name],
        )?;
        rows.iter()
            .map(|r| {
                let number = r[0].i().unwrap_or(0);
                let present = |v: &Val| v.f().filter(|x| *x >= 0.0);
                Ok(TrialRow {
                    number,
                    params: parse_params(&text(&r[1]))?,
                    status: Status::parse(&text(&r[2])),
                    worker: text(&r[3]),
                    attempt: r[4].i().unwrap_or(1),
                    seed: r[5].i().unwrap_or(0),
                    started: r[6].f().unwrap_or(0.0),
                    finished: r[7].f(),
                    duration: r[8].f(),
                    val_accuracy: present(&r[9]),
                    val_loss: present(&r[10]),
                    epochs_done: r[11].i(),
                    run_dir: r[12].t().map(String::from),
                    error: r[13].t().filter(|s| !s.is_empty()).map(String::from),
                    curve: epochs.iter().filter(|e| e[0].i() == Some(number)).filter_map(|e| e[2].f()).collect(),
                })
            })
            .collect()
    }
}

fn text(v: &Val) -> String {
    v.t().unwrap_or_default().to_string()
}

fn finite_or(x: f64, y: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        y
    }
}

fn parse_params(json: &str) -> Result<Params> {
    serde_json::from_str(json)
        .map_err(|e| Error::Config(format!("a stored trial's parameters do not parse ({e}): {json}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trials: i64) -> StudySpec {
        StudySpec {
            name: "s".into(),
            recipe: "model = 'lenet5'\ndata = 'mnist:x'\n".into(),
            space: "lr = \"loguniform(1e-3, 1e-1)\"\n".into(),
            strategy: "random".into(),
            trials,
            seed: 0,
            pruner: "none".into(),
            parent: String::new(),
        }
    }

    fn params(n: i64) -> Option<Params> {
        Some(Params::from([("lr".to_string(), toml::Value::Float(0.01 * (n + 1) as f64))]))
    }

    #[test]
    fn claims_reclaims_expired_leases_and_gives_up_on_a_trial_that_keeps_killing_workers() {
        let d = tempfile::tempdir().unwrap();
        let mut st = Store::open(&format!("sqlite:{}", d.path().join("s.db").display())).unwrap();
        st.create_study(&spec(2)).unwrap();
        let s = spec(2);
        // A zero lease expires at once: the same trial comes back with a higher attempt, up to the cap.
        for attempt in 1..=MAX_ATTEMPTS {
            let Next::Run(c) = st.claim(&s, "w", 0.0, &params).unwrap() else { panic!() };
            assert_eq!((c.number, c.attempt), (0, attempt));
        }
        let Next::Run(c) = st.claim(&s, "w", 60.0, &params).unwrap() else { panic!() };
        assert_eq!((c.number, c.attempt), (1, 1), "trial 0 given up, trial 1 next");
        let t = st.trials("s").unwrap();
        assert_eq!(t[0].status, Status::Failed);
        assert!(t[0].error.as_deref().unwrap().contains("lost 3 times"));
        // A stale worker's result is refused; the holder's is taken.
        let o = Outcome {
            status: Status::Finished,
            val_accuracy: Some(0.5),
            val_loss: Some(1.0),
            epochs_done: 1,
            duration: 1.0,
            run_dir: "r".into(),
            error: None,
        };
        assert!(!st.finish("s", &c, "someone-else", &o).unwrap());
        assert!(st.finish("s", &c, "w", &o).unwrap());
        assert!(matches!(st.claim(&s, "w", 60.0, &params).unwrap(), Next::Done));
        // The schema is versioned: a database from another version is refused.
        drop(st);
        let conn = rusqlite::Connection::open(d.path().join("s.db")).unwrap();
        conn.execute("UPDATE convkit_schema SET version = 99", []).unwrap();
        let e = Store::open(&format!("sqlite:{}", d.path().join("s.db").display())).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
