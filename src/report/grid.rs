//! The verdict matrix both summaries show: a row per scenario (in case order), a column per agent × runtime (versions
//! in numeric order, 3.5.1 before 3.16.0), and what a cell says about its case.

use crate::expect::Verdict;

/// Rows, columns and the verdicts behind them.
pub struct Grid<'a> {
    /// Scenario names, in the order their first case ran.
    pub rows: Vec<String>,
    /// `(agent, runtime)`, sorted by version, then runtime.
    pub columns: Vec<(String, String)>,
    verdicts: &'a [Verdict],
}

impl<'a> Grid<'a> {
    /// The grid of these verdicts.
    pub fn new(verdicts: &'a [Verdict]) -> Grid<'a> {
        let mut columns: Vec<(String, String)> = Vec::new();
        let mut rows: Vec<String> = Vec::new();
        for v in verdicts {
            let col = (v.agent.clone(), column_runtime(v));
            if !columns.contains(&col) {
                columns.push(col);
            }
            if !rows.contains(&v.scenario) {
                rows.push(v.scenario.clone());
            }
        }
        let version_key =
            |agent: &str| agent.strip_prefix("prometheus@").and_then(|v| v.parse::<crate::agent::Version>().ok());
        columns.sort_by(|a, b| (version_key(&a.0), &a.0, &a.1).cmp(&(version_key(&b.0), &b.0, &b.1)));
        Grid { rows, columns, verdicts }
    }

    /// The case of a row and column, if the run had one.
    pub fn cell(&self, row: &str, (agent, runtime): &(String, String)) -> Option<&'a Verdict> {
        self.verdicts.iter().find(|v| v.scenario == row && &v.agent == agent && &column_runtime(v) == runtime)
    }
}

/// The column's second half: the runtime, and the mode when it is agent mode.
fn column_runtime(v: &Verdict) -> String {
    match v.mode {
        crate::scenario::AgentMode::Server => v.runtime.clone(),
        crate::scenario::AgentMode::Agent => format!("{}, agent mode", v.runtime),
    }
}

/// What a cell says: `✅ delivered`, `❌ dropped (expected delivered)`, `⚠️ error`, or a known vulnerability.
pub fn mark(v: &Verdict) -> String {
    let observed = v.observed.map_or_else(|| "no outcome".to_owned(), |o| o.to_string());
    if let Some(id) = v.known_vulnerable().find_map(|f| super::console::advisory_id(&f.message)).filter(|_| v.passed())
    {
        format!("⚠️ {observed}, known-vulnerable ({id})")
    } else if v.passed() {
        format!("✅ {observed}")
    } else if v.error.is_some() {
        "⚠️ error".to_owned()
    } else {
        format!("❌ {observed} (expected {})", v.expected)
    }
}
