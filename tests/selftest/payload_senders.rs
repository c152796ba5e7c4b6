//! Every payload expectation, broken by a fake sender one rule at a time: the sender replays what a conforming
//! Prometheus sends for the compliance target (scrapes 1–4), with one mutation, and the harness must name the
//! series and the sample. A sender without the mutation passes every check.

use azrw::Check;
use azrw::expect::{Evaluation, Status};
use azrw::remote_write::{DecodedWrite, HistogramCount, Metadata, RwVersion, Sample, Series};
use azrw::scenario::{Exposition, Family, Outcome, ScrapeSpec, TargetPreset};
use azrw::scrape::family::STALE_NAN;
use azrw::scrape::{Expected, Scrape, ScrapeModel};

use crate::common::{CLAIMED_VERSION, Knobs, assert_clean, assert_violation, finding, send_writes, stage};

const CLIENT_SECRET: &str = r#"
name: fake/payload
agents: [prometheus@3.5]
auth:
  oauth:
    client_id: 8e547ddf-a7de-46ed-9269-5526a55d3211
    client_secret: fake-sender-secret
    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
"#;

/// When the fake target "served" scrape 1; later scrapes follow every second.
const BASE_MS: i64 = 1_764_000_000_000;
const SCRAPES: u64 = 4;

fn model() -> ScrapeModel {
    model_of(&[])
}

/// The compliance target plus `families` (which choose the exposition format).
fn model_of(families: &[Family]) -> ScrapeModel {
    let spec = ScrapeSpec {
        preset: Some(TargetPreset::Compliance),
        families: families.to_vec(),
        scrapes: Some(SCRAPES),
        ..Default::default()
    };
    ScrapeModel::new(&spec, "127.0.0.1:9100", vec![("cluster".into(), "azrw".into())], 1000)
}

/// The target's log: served 3 ms after Prometheus stamped the scrape, in the model's format.
fn scrapes_of(model: &ScrapeModel, n: u64) -> Vec<Scrape> {
    (1..=n).map(|n| Scrape { format: model.exposition, ..Scrape::text(n, stamp(n) + 3) }).collect()
}

fn scrapes(n: u64) -> Vec<Scrape> {
    scrapes_of(&model(), n)
}

fn stamp(n: u64) -> i64 {
    BASE_MS + 1000 * (n as i64 - 1)
}

/// What a conforming Prometheus sends: one metadata-only request, then one request per scrape.
fn conforming(model: &ScrapeModel, version: RwVersion) -> Vec<DecodedWrite> {
    let metadata = model
        .metadata()
        .iter()
        .map(|m| Metadata { family: m.name.into(), kind: m.kind.into(), help: m.help.into(), unit: m.unit.into() })
        .collect();
    let mut writes = vec![DecodedWrite { version: Some(version), metadata, ..Default::default() }];
    let exemplars = model.exemplars(SCRAPES);
    for n in 1..=SCRAPES {
        let series = model
            .expected(n)
            .into_iter()
            .map(|e| {
                let mut s = Series { labels: e.labels, samples: vec![], histograms: vec![], exemplars: vec![] };
                let value = match e.value {
                    Expected::Bits(b) => f64::from_bits(b),
                    Expected::NaN => f64::NAN,
                    Expected::Stale => f64::from_bits(STALE_NAN),
                    Expected::Any => 0.25,
                    Expected::Histogram(h) => {
                        s.histograms.push(azrw::remote_write::NativeHistogram { timestamp: stamp(n), ..*h });
                        return s;
                    }
                };
                s.samples.push(Sample { timestamp: stamp(n), value });
                s.exemplars = exemplars
                    .iter()
                    .filter(|x| x.scrape == n && x.series == s.labels)
                    .map(|x| x.exemplar.clone())
                    .collect();
                s
            })
            .collect();
        writes.push(DecodedWrite { version: Some(version), series, ..Default::default() });
    }
    if version == RwVersion::V2 {
        // RW 2.0 carries metadata on the series themselves (the encoder attaches it by series name).
        let mut meta = writes.remove(0).metadata;
        for m in &mut meta {
            let names: Vec<&str> = writes[0].series.iter().filter_map(|s| s.label("__name__")).collect();
            if !names.contains(&m.family.as_str()) {
                m.family = names.iter().find(|n| n.starts_with(m.family.as_str())).unwrap().to_string();
            }
        }
        writes[0].metadata = meta;
    }
    writes
}

fn knobs_for(version: RwVersion) -> Knobs {
    match version {
        RwVersion::V1 => Knobs::default(),
        RwVersion::V2 => Knobs {
            content_type: Some("application/x-protobuf;proto=io.prometheus.write.v2.Request".into()),
            version_header: Some("2.0.0".into()),
            ..Knobs::default()
        },
    }
}

/// Sends the conforming writes after `mutate`, and evaluates.
async fn replay(
    scenario: &str,
    version: RwVersion,
    mutate: impl FnOnce(&mut Vec<DecodedWrite>),
) -> (Evaluation, Vec<u16>) {
    replay_model(&model(), scenario, version, mutate).await
}

/// [`replay`] against another target model.
async fn replay_model(
    model: &ScrapeModel,
    scenario: &str,
    version: RwVersion,
    mutate: impl FnOnce(&mut Vec<DecodedWrite>),
) -> (Evaluation, Vec<u16>) {
    let (eval, statuses, _) = send_and_bundle(model, scenario, version, mutate).await;
    (eval, statuses)
}

/// Like [`replay_model`], and writes the run's capture bundle (what `azrw replay` reads).
async fn send_and_bundle(
    model: &ScrapeModel,
    scenario: &str,
    version: RwVersion,
    mutate: impl FnOnce(&mut Vec<DecodedWrite>),
) -> (Evaluation, Vec<u16>, tempfile::TempDir) {
    let mut writes = conforming(model, version);
    mutate(&mut writes);
    let stage = stage(scenario).await;
    let statuses = send_writes(&stage, &knobs_for(version), &writes).await;
    let scrapes = scrapes_of(model, SCRAPES);
    let eval = stage.evaluate_payload(CLAIMED_VERSION, model, &scrapes);
    let bundle = tempfile::tempdir().unwrap();
    stage.write_bundle(bundle.path(), CLAIMED_VERSION, Some(model), &scrapes, &eval);
    (eval, statuses, bundle)
}

/// `azrw replay` of the bundle: the same verdict, and every payload finding with the same status, message and
/// evidence as the live evaluation — the target model and scrape log in the bundle stand in for the live target.
async fn assert_replay_reproduces(eval: &Evaluation, bundle: &std::path::Path) {
    let report = azrw::runner::replay::replay(bundle, None, azrw::cloud::MockData::embedded()).await.unwrap();
    assert_eq!(report.reproduced(), Some(true), "{:#?}\n{:?}", report.verdict, report.recorded);
    let replayed = report.verdict.unwrap();
    for check in azrw::expect::payload::CHECKS {
        let (live, again) = (finding(eval, *check), replayed.findings.iter().find(|f| f.check == *check).unwrap());
        assert_eq!(
            (live.status, &live.message, &live.evidence),
            (again.status, &again.message, &again.evidence),
            "{check}"
        );
    }
}

#[tokio::test]
async fn replay_rejudges_payload_checks_from_the_bundle() {
    // A sender that dropped a sample: the replay fails payload.samples with the same evidence.
    let (eval, _, bundle) = send_and_bundle(&model(), CLIENT_SECRET, RwVersion::V1, |w| {
        w[2].series.retain(|s| s.label("__name__") != Some("azrw_gauge"))
    })
    .await;
    assert_violation(&eval, Check::PayloadSamples, &["azrw_gauge{", "scrape 2 never arrived"]);
    assert_replay_reproduces(&eval, bundle.path()).await;
    // A conforming sender: the replay passes every payload check.
    let (eval, _, bundle) = send_and_bundle(&model(), CLIENT_SECRET, RwVersion::V1, |_| {}).await;
    assert_clean(&eval);
    assert_replay_reproduces(&eval, bundle.path()).await;
}

async fn violate(mutate: impl FnOnce(&mut Vec<DecodedWrite>)) -> Evaluation {
    replay(CLIENT_SECRET, RwVersion::V1, mutate).await.0
}

/// The compliance target with a native histogram (protobuf).
fn native() -> ScrapeModel {
    model_of(&[Family::NativeHistogram])
}

/// The compliance target with exemplars and a unit (OpenMetrics).
fn openmetrics() -> ScrapeModel {
    model_of(&[Family::Exemplars, Family::Unit])
}

async fn violate_native(mutate: impl FnOnce(&mut Vec<DecodedWrite>)) -> Evaluation {
    replay_model(&native(), CLIENT_SECRET, RwVersion::V1, mutate).await.0
}

async fn violate_openmetrics(mutate: impl FnOnce(&mut Vec<DecodedWrite>)) -> Evaluation {
    replay_model(&openmetrics(), CLIENT_SECRET, RwVersion::V1, mutate).await.0
}

/// The series named `name` (first match) in the write for scrape `n`.
fn series<'a>(writes: &'a mut [DecodedWrite], n: usize, name: &str) -> &'a mut Series {
    writes[n].series.iter_mut().find(|s| s.label("__name__") == Some(name)).unwrap()
}

#[tokio::test]
async fn conforming_rw1_and_rw2_senders_pass_every_payload_check() {
    for version in [RwVersion::V1, RwVersion::V2] {
        let (eval, statuses) = replay(CLIENT_SECRET, version, |_| {}).await;
        assert!(statuses.iter().all(|s| *s == 200), "{version:?}: {statuses:?}");
        assert_clean(&eval);
        assert_eq!(eval.observed, Some(Outcome::Delivered));
        for check in azrw::expect::payload::CHECKS {
            assert_eq!(finding(&eval, *check).status, Status::Pass, "{version:?} {check}");
        }
    }
}

#[tokio::test]
async fn conforming_native_histogram_and_exemplar_senders_pass_every_payload_check() {
    for model in [native(), openmetrics()] {
        for version in [RwVersion::V1, RwVersion::V2] {
            let (eval, statuses) = replay_model(&model, CLIENT_SECRET, version, |_| {}).await;
            assert!(statuses.iter().all(|s| *s == 200), "{version:?}: {statuses:?}");
            assert_clean(&eval);
            for check in azrw::expect::payload::CHECKS {
                assert_eq!(finding(&eval, *check).status, Status::Pass, "{:?} {version:?} {check}", model.exposition);
            }
        }
    }
    let eval = replay_model(&openmetrics(), CLIENT_SECRET, RwVersion::V1, |_| {}).await.0;
    let f = finding(&eval, Check::PayloadExemplars);
    assert!(f.message.contains("all 6 exemplars"), "{f:#?}");
}

#[tokio::test]
async fn a_native_histogram_with_a_wrong_bucket_is_named() {
    let eval = violate_native(|w| series(w, 2, "azrw_native").histograms[0].positive_deltas[1] = 3).await;
    assert_violation(
        &eval,
        Check::PayloadValues,
        &["azrw_native{", "scrape 2: expected the native histogram", "deltas=[2, 2, -2]", "deltas=[2, 3, -2]"],
    );
}

#[tokio::test]
async fn a_native_histogram_with_a_wrong_zero_bucket_or_schema_is_named() {
    let eval =
        violate_native(|w| series(w, 1, "azrw_native").histograms[0].zero_count = Some(HistogramCount::Int(2))).await;
    assert_violation(&eval, Check::PayloadValues, &["azrw_native{", "zero_count=1", "zero_count=2"]);
    let eval = violate_native(|w| series(w, 3, "azrw_native").histograms[0].schema = 1).await;
    assert_violation(&eval, Check::PayloadValues, &["azrw_native{", "scrape 3", "schema=1"]);
    // A float histogram is not the integer histogram that was scraped, even with equal counts.
    let eval =
        violate_native(|w| series(w, 1, "azrw_native").histograms[0].count = Some(HistogramCount::Float(6.0))).await;
    assert_violation(&eval, Check::PayloadValues, &["count=6 ", "count=6f"]);
}

#[tokio::test]
async fn a_missing_native_histogram_is_named() {
    let eval = violate_native(|w| series(w, 2, "azrw_native").histograms.clear()).await;
    assert_violation(&eval, Check::PayloadSamples, &["azrw_native{", "scrape 2 never arrived", "native histogram"]);
}

#[tokio::test]
async fn a_native_histogram_sent_as_floats_is_named() {
    let eval = violate_native(|w| {
        let s = series(w, 1, "azrw_native");
        s.histograms.clear();
        s.samples.push(Sample { timestamp: stamp(1), value: 6.0 });
    })
    .await;
    assert_violation(&eval, Check::PayloadValues, &["azrw_native{", "expected the native histogram", "= 6 (bits"]);
}

#[tokio::test]
async fn a_duplicated_native_histogram_is_named() {
    let eval = violate_native(|w| {
        let again = series(w, 3, "azrw_native").clone();
        w[4].series.push(again);
    })
    .await;
    assert_violation(
        &eval,
        Check::PayloadDuplicates,
        &["azrw_native{", &format!("@ {}", stamp(3)), "native histogram"],
    );
}

#[tokio::test]
async fn a_scrape_served_in_the_wrong_format_is_named() {
    let model = native();
    let stage = stage(CLIENT_SECRET).await;
    send_writes(&stage, &Knobs::default(), &conforming(&model, RwVersion::V1)).await;
    let mut log = scrapes_of(&model, SCRAPES);
    log[1].format = Exposition::Text;
    log[1].accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4".into();
    let eval = stage.evaluate_payload(CLAIMED_VERSION, &model, &log);
    assert_violation(
        &eval,
        Check::PayloadExposition,
        &["scrape 2 was served as text 0.0.4", "did not ask for protobuf", "Accept: application/openmetrics-text"],
    );
}

#[tokio::test]
async fn a_lost_exemplar_is_named() {
    // Scrape 1 carries exemplar c0001 of the counter; scrape 3 carries c0002, which arrives.
    let eval = violate_openmetrics(|w| series(w, 1, "azrw_exemplar_total").exemplars.clear()).await;
    assert_violation(
        &eval,
        Check::PayloadExemplars,
        &["exemplar was lost", "trace_id=\"c0001\"", "azrw_exemplar_total{", "a later one arrived", "c0002"],
    );
}

#[tokio::test]
async fn a_duplicated_exemplar_is_named() {
    // Prometheus keeps an exemplar served again unchanged once: a sender that resends it on scrape 2 is wrong.
    let eval = violate_openmetrics(|w| {
        let e = series(w, 1, "azrw_exemplar_total").exemplars[0].clone();
        series(w, 2, "azrw_exemplar_total").exemplars.push(e);
    })
    .await;
    assert_violation(&eval, Check::PayloadExemplars, &["delivered twice", "c0001", "1764000001500"]);
}

#[tokio::test]
async fn an_exemplar_on_the_wrong_series_or_with_a_wrong_value_is_named() {
    let eval = violate_openmetrics(|w| {
        let e = series(w, 1, "azrw_exemplar_total").exemplars.remove(0);
        series(w, 1, "azrw_exemplar_hist_sum").exemplars.push(e);
    })
    .await;
    assert_violation(
        &eval,
        Check::PayloadExemplars,
        &["did not serve on this series", "on azrw_exemplar_hist_sum{", "the target served", "azrw_exemplar_total{"],
    );
    let eval = violate_openmetrics(|w| series(w, 3, "azrw_exemplar_total").exemplars[0].timestamp += 1).await;
    assert_violation(&eval, Check::PayloadExemplars, &["did not serve", "c0002", "@ 1764000002501"]);
    let eval = violate_openmetrics(|w| {
        let s = w[1].series.iter_mut().find(|s| s.label("le") == Some("+Inf") && !s.exemplars.is_empty()).unwrap();
        s.exemplars[0].value = 7.0;
    })
    .await;
    assert_violation(&eval, Check::PayloadExemplars, &["did not serve", "i0001", "} 7 @"]);
}

#[tokio::test]
async fn a_missing_or_wrong_unit_is_named() {
    let eval = violate_openmetrics(|w| {
        w[0].metadata.iter_mut().find(|m| m.family == "azrw_latency_seconds").unwrap().unit = String::new();
    })
    .await;
    assert_violation(
        &eval,
        Check::PayloadMetadata,
        &["azrw_latency_seconds is wrong", "unit \"seconds\"", "azrw_latency_seconds: GAUGE", "unit \"\""],
    );
}

#[tokio::test]
async fn a_lost_sample_is_named() {
    let eval = violate(|w| w[2].series.retain(|s| s.label("__name__") != Some("azrw_gauge"))).await;
    assert_violation(
        &eval,
        Check::PayloadSamples,
        &["azrw_gauge{", "scrape 2 never arrived", "0 (bits 0x0000000000000000)"],
    );
}

#[tokio::test]
async fn a_duplicated_sample_is_named() {
    let eval = violate(|w| {
        let again = w[2].clone();
        w.insert(3, again);
    })
    .await;
    assert_violation(&eval, Check::PayloadDuplicates, &["azrw_", &format!("@ {}", stamp(2)), "request #"]);
}

#[tokio::test]
async fn reordered_samples_are_named() {
    let eval = violate(|w| w.swap(2, 3)).await;
    assert_violation(
        &eval,
        Check::PayloadOrder,
        &["went back in time", &format!("@ {}", stamp(2)), &format!("@ {}", stamp(3))],
    );
}

#[tokio::test]
async fn unsorted_labels_are_named() {
    let eval = violate(|w| series(w, 1, "azrw_counter_total").labels.reverse()).await;
    assert_violation(&eval, Check::PayloadLabels, &["not sorted", "azrw_counter_total"]);
}

#[tokio::test]
async fn repeated_label_names_are_named() {
    let eval = violate(|w| {
        let s = series(w, 1, "azrw_gauge");
        s.labels.insert(1, ("cluster".into(), "azrw".into()));
    })
    .await;
    assert_violation(&eval, Check::PayloadLabels, &["label name cluster is repeated", "azrw_gauge"]);
}

#[tokio::test]
async fn a_kept_empty_label_value_is_named() {
    let eval = violate(|w| {
        let s = series(w, 1, "azrw_labels");
        s.labels.push(("zz_empty".into(), String::new()));
    })
    .await;
    assert_violation(&eval, Check::PayloadLabels, &["zz_empty has an empty value", "azrw_labels"]);
}

#[tokio::test]
async fn a_series_without_name_is_named() {
    let eval = violate(|w| {
        series(w, 1, "azrw_gauge").labels.remove(0);
    })
    .await;
    assert_violation(&eval, Check::PayloadLabels, &["no __name__ label"]);
}

#[tokio::test]
async fn stale_marker_with_wrong_bits_is_named() {
    // Scrape 3 is where azrw_stale disappears: an ordinary NaN is not a stale marker.
    let eval = violate(|w| series(w, 3, "azrw_stale").samples[0].value = f64::NAN).await;
    assert_violation(
        &eval,
        Check::PayloadValues,
        &["azrw_stale{", "scrape 3", "0x7ff0000000000002", "0x7ff8000000000000"],
    );
}

#[tokio::test]
async fn a_wrong_value_is_named() {
    let eval = violate(|w| series(w, 2, "azrw_counter_total").samples[0].value = 7.0).await;
    assert_violation(&eval, Check::PayloadValues, &["azrw_counter_total{", "scrape 2: expected 1 (bits", "= 7"]);
}

#[tokio::test]
async fn seconds_instead_of_milliseconds_are_named() {
    let eval = violate(|w| series(w, 1, "up").samples[0].timestamp = BASE_MS / 1000).await;
    assert_violation(&eval, Check::PayloadTimestamps, &["not in milliseconds", "up{"]);
}

#[tokio::test]
async fn a_timestamp_of_no_scrape_is_named() {
    let eval = violate(|w| series(w, 4, "azrw_gauge").samples[0].timestamp = stamp(4) + 400).await;
    assert_violation(&eval, Check::PayloadTimestamps, &["matches no scrape", "azrw_gauge{", "nearest: scrape 4"]);
}

#[tokio::test]
async fn a_series_the_target_never_produced_is_named() {
    let eval = violate(|w| {
        let mut s = series(w, 1, "azrw_gauge").clone();
        s.labels[0].1 = "azrw_invented".into();
        w[1].series.push(s);
    })
    .await;
    assert_violation(&eval, Check::PayloadSamples, &["did not produce on scrape 1", "azrw_invented{"]);
}

#[tokio::test]
async fn a_conflicting_job_not_exported_is_named() {
    let eval = violate(|w| {
        let s = series(w, 1, "azrw_honor");
        s.labels.retain(|(k, _)| k != "exported_job");
    })
    .await;
    assert_violation(&eval, Check::PayloadTargetLabels, &["exported_job is None", "azrw_honor{"]);
}

#[tokio::test]
async fn a_missing_external_label_is_named() {
    let eval = violate(|w| series(w, 1, "azrw_gauge").labels.retain(|(k, _)| k != "cluster")).await;
    assert_violation(&eval, Check::PayloadTargetLabels, &["external label cluster is None", "azrw_gauge{"]);
}

#[tokio::test]
async fn wrong_metadata_is_named_and_missing_metadata_stays_open() {
    let eval =
        violate(|w| w[0].metadata.iter_mut().find(|m| m.family == "azrw_histogram").unwrap().kind = "GAUGE".into())
            .await;
    assert_violation(&eval, Check::PayloadMetadata, &["azrw_histogram is wrong: expected HISTOGRAM", "GAUGE"]);
    let eval = violate(|w| w[0].metadata.retain(|m| m.family != "azrw_summary")).await;
    let f = finding(&eval, Check::PayloadMetadata);
    assert_eq!(f.status, Status::Undecided, "{f:#?}");
    assert!(f.message.contains("azrw_summary"), "{f:#?}");
}

#[tokio::test]
async fn framed_snappy_is_refused_and_named() {
    let model = model();
    let stage = stage(CLIENT_SECRET).await;
    let knobs = Knobs { framed_snappy: true, ..Knobs::default() };
    let statuses = send_writes(&stage, &knobs, &conforming(&model, RwVersion::V1)).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    let eval = stage.evaluate_payload(CLAIMED_VERSION, &model, &scrapes(SCRAPES));
    assert_violation(&eval, Check::WriteBody, &["snappy *framed*", "request #"]);
}

#[tokio::test]
async fn azure_label_limits_are_refused_by_the_dcr_and_named() {
    let cases: [(Family, &str); 4] = [
        (Family::TooManyLabels, "67 labels (Azure allows at most 63 per series)"),
        (Family::LongLabelName, "has 512 characters (Azure allows at most 511)"),
        (Family::LongLabelValue, "value of 1024 characters (Azure allows at most 1023)"),
        (Family::CaseDuplicateLabels, "AZRW_CASE and azrw_case differ only by case"),
    ];
    for (family, words) in cases {
        let (eval, statuses) = replay(CLIENT_SECRET, RwVersion::V1, |w| {
            let mut raw = azrw::scrape::family::raw_series(family, 1);
            let labels = model().labels(&raw.remove(0).labels);
            for (n, write) in w.iter_mut().enumerate().skip(1) {
                let sample = Sample { timestamp: stamp(n as u64), value: 1.0 };
                write.series.push(Series {
                    labels: labels.clone(),
                    samples: vec![sample],
                    histograms: vec![],
                    exemplars: vec![],
                });
            }
        })
        .await;
        assert_eq!(&statuses[1..], [400, 400, 400, 400], "{family:?}");
        assert_violation(&eval, Check::PayloadAzureLimits, &[words, "answered 400"]);
        assert_eq!(eval.observed, Some(Outcome::Dropped), "{family:?}: {}", eval.explanation);
        assert!(eval.explanation.contains(words), "{family:?}: {}", eval.explanation);
    }
}

#[tokio::test]
async fn rw2_refused_with_415_is_dropped() {
    let scenario = format!("{CLIENT_SECRET}cloud: {{refuse_rw2: true}}\n");
    let (eval, statuses) = replay(&scenario, RwVersion::V2, |_| {}).await;
    assert!(statuses.iter().all(|s| *s == 415), "{statuses:?}");
    assert_eq!(eval.observed, Some(Outcome::Dropped), "{}", eval.explanation);
    assert!(eval.explanation.contains("answered 415"), "{}", eval.explanation);
}

#[tokio::test]
async fn the_payload_snapshot_shows_only_the_exemplars_of_its_scrapes() {
    // An agent that ran longer sends the exemplar of scrape 5 as well: timing, so the snapshot must not change.
    let model = openmetrics();
    let late = model.exemplars(SCRAPES + 2).into_iter().find(|k| k.scrape == SCRAPES + 1).unwrap();
    let mut snapshots = Vec::new();
    for extra in [false, true] {
        let mut writes = conforming(&model, RwVersion::V1);
        if extra {
            let s = Series {
                labels: late.series.clone(),
                samples: vec![],
                histograms: vec![],
                exemplars: vec![late.exemplar.clone()],
            };
            writes.push(DecodedWrite { version: Some(RwVersion::V1), series: vec![s], ..Default::default() });
        }
        let stage = stage(CLIENT_SECRET).await;
        send_writes(&stage, &knobs_for(RwVersion::V1), &writes).await;
        let text = azrw::expect::payload::snapshot(&model, &scrapes_of(&model, SCRAPES), &stage.exchanges());
        snapshots.push(text);
    }
    assert!(snapshots[0].contains("trace_id=\"c0002\""), "{}", snapshots[0]);
    assert_eq!(snapshots[0], snapshots[1]);
}
