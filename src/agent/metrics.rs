//! The agent's own remote-write metrics (its `/metrics`), read at the end of a load case: how many shards it ran
//! and how long its sends took, as the agent itself saw them.

use std::collections::BTreeMap;

const PREFIX: &str = "prometheus_remote_storage_";

/// The agent's remote-storage counters, summed over label sets (one remote), by name without the prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentMetrics(pub BTreeMap<String, f64>);

impl AgentMetrics {
    /// Parses Prometheus text exposition, keeping `prometheus_remote_storage_*` samples.
    ///
    /// ```
    /// let m = azrw::agent::metrics::AgentMetrics::parse(
    ///     "prometheus_remote_storage_samples_total{remote_name=\"a\",url=\"u\"} 12\n# HELP x\n",
    /// );
    /// assert_eq!(m.get("samples_total"), 12.0);
    /// ```
    pub fn parse(text: &str) -> AgentMetrics {
        AgentMetrics::parse_without(text, &[])
    }

    /// Like [`AgentMetrics::parse`], leaving out the queues that write to `hosts` (plain `remote_write` entries
    /// beside the DCR's): the mock's account is the DCR's alone.
    ///
    /// ```
    /// let m = azrw::agent::metrics::AgentMetrics::parse_without(
    ///     "prometheus_remote_storage_samples_total{url=\"https://dce/w\"} 12\n\
    ///      prometheus_remote_storage_samples_total{url=\"https://sink.example.net/api/v1/write\"} 9\n",
    ///     &["sink.example.net".to_owned()],
    /// );
    /// assert_eq!(m.get("samples_total"), 12.0);
    /// ```
    pub fn parse_without(text: &str, hosts: &[String]) -> AgentMetrics {
        let skipped: Vec<String> = hosts.iter().map(|h| format!("url=\"https://{h}/")).collect();
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with(PREFIX) && !skipped.iter().any(|s| l.contains(s.as_str()))) {
            let (series, value) = match line.rsplit_once(' ') {
                Some((s, v)) => (s, v.parse::<f64>().unwrap_or(0.0)),
                None => continue,
            };
            let name = series.split('{').next().unwrap_or(series).trim_start_matches(PREFIX).to_owned();
            *out.entry(name).or_insert(0.0) += value;
        }
        AgentMetrics(out)
    }

    /// A value (0 when absent).
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

/// What the agent reported about its remote-write queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteWriteStats {
    /// `prometheus_remote_storage_shards` (summed over queues).
    pub shards: Option<f64>,
    /// `prometheus_remote_storage_shards_max`.
    pub shards_max: Option<f64>,
    /// `prometheus_remote_storage_sent_batch_duration_seconds` sum and count.
    pub send_seconds: Option<(f64, f64)>,
    /// Samples the agent retried (`…_samples_retried_total`).
    pub retried: Option<f64>,
    /// Samples the agent gave up on (`…_samples_failed_total`).
    pub failed: Option<f64>,
    /// Samples dropped before sending (`…_samples_dropped_total`).
    pub dropped: Option<f64>,
}

impl RemoteWriteStats {
    /// Sums the named series out of a text exposition (parsed by [`AgentMetrics::parse`]).
    pub fn parse(exposition: &str) -> RemoteWriteStats {
        RemoteWriteStats::from_metrics(&AgentMetrics::parse(exposition))
    }

    /// Picks the queue figures out of the agent's parsed remote-storage metrics.
    pub fn from_metrics(metrics: &AgentMetrics) -> RemoteWriteStats {
        let get = |name: &str| metrics.0.get(name).copied();
        let batch = "sent_batch_duration_seconds";
        RemoteWriteStats {
            shards: get("shards"),
            shards_max: get("shards_max"),
            send_seconds: get(&format!("{batch}_sum")).zip(get(&format!("{batch}_count"))),
            retried: get("samples_retried_total"),
            failed: get("samples_failed_total"),
            dropped: get("samples_dropped_total"),
        }
    }

    /// Evidence lines for a report.
    pub fn describe(&self) -> Vec<String> {
        let n = |v: Option<f64>| v.map_or_else(|| "not reported".to_owned(), |v| format!("{v:.0}"));
        let mut out = vec![format!("shards {} (max {})", n(self.shards), n(self.shards_max))];
        out.push(match self.send_seconds {
            Some((sum, count)) if count > 0.0 => {
                format!("mean send latency {:.1}ms over {count:.0} batches", sum * 1000.0 / count)
            }
            _ => "send latency not reported".to_owned(),
        });
        out.push(format!(
            "samples retried {}, failed {}, dropped {}",
            n(self.retried),
            n(self.failed),
            n(self.dropped)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remote_write_metrics() {
        let text = "# HELP x\nprometheus_remote_storage_shards{remote_name=\"a\",url=\"u\"} 3\n\
                    prometheus_remote_storage_shards_max{remote_name=\"a\"} 50\n\
                    prometheus_remote_storage_sent_batch_duration_seconds_sum{remote_name=\"a\"} 2.5\n\
                    prometheus_remote_storage_sent_batch_duration_seconds_count{remote_name=\"a\"} 100\n\
                    prometheus_remote_storage_samples_retried_total{remote_name=\"a\"} 7\n";
        let s = RemoteWriteStats::parse(text);
        assert_eq!(s.shards, Some(3.0));
        assert_eq!(s.send_seconds, Some((2.5, 100.0)));
        assert_eq!(s.failed, None);
        let d = s.describe().join("; ");
        assert!(
            d.contains("shards 3 (max 50)") && d.contains("25.0ms over 100 batches") && d.contains("retried 7"),
            "{d}"
        );
    }
}
