//! JUnit XML: one testsuite per scenario file, one testcase per case, failures carrying the decisive evidence.

use std::io;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::console::render_details;
use crate::expect::Verdict;

/// Builds the report; suites appear in the order their first case does.
pub fn junit_report(verdicts: &[Verdict]) -> Report {
    let mut suites: Vec<(String, Vec<&Verdict>)> = Vec::new();
    for v in verdicts {
        match suites.iter_mut().find(|(source, _)| *source == v.source) {
            Some((_, list)) => list.push(v),
            None => suites.push((v.source.clone(), vec![v])),
        }
    }

    let mut report = Report::new("azrw");
    report.set_time(verdicts.iter().map(|v| v.duration).sum::<Duration>());
    for (source, list) in suites {
        let mut suite = TestSuite::new(source);
        suite.set_time(list.iter().map(|v| v.duration).sum::<Duration>());
        for v in list {
            let status = if v.passed() {
                TestCaseStatus::success()
            } else {
                // A harness error (no verdict reached) is an `<error>`, a verdict against the agent a `<failure>`.
                let kind = if v.error.is_some() { NonSuccessKind::Error } else { NonSuccessKind::Failure };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(v.decisive_evidence());
                s.set_description(render_details(v));
                s
            };
            let mut case = TestCase::new(v.case_id.clone(), status);
            // A known vulnerability passes (unless --strict-security) but must not pass silently.
            let known: Vec<String> = v.known_vulnerable().map(|f| f.headline()).collect();
            if !known.is_empty() {
                case.set_system_out(known.join("\n"));
                for id in known.iter().filter_map(|line| super::console::advisory_id(line)) {
                    case.add_property(quick_junit::Property::new("azrw.known-vulnerable", id));
                }
            }
            // Which build was judged: a release gate's record of exactly what it passed.
            if let Some(build) = &v.build {
                for (name, value) in [
                    ("azrw.agent.location", Some(build.location.clone())),
                    ("azrw.agent.digest", Some(build.digest.clone())),
                    ("azrw.agent.version", Some(build.version.to_string())),
                    ("azrw.agent.reported-version", build.reported.clone()),
                    ("azrw.agent.revision", build.revision.clone()),
                ] {
                    if let Some(value) = value {
                        case.add_property(quick_junit::Property::new(name, value));
                    }
                }
            }
            case.add_property(quick_junit::Property::new("azrw.mode", v.mode.to_string()));
            case.set_classname(v.scenario.clone());
            case.set_time(v.duration);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

/// Writes the JUnit XML for `verdicts` to `path`.
pub fn write_junit(verdicts: &[Verdict], path: &Path) -> io::Result<()> {
    let file = io::BufWriter::new(std::fs::File::create(path)?);
    junit_report(verdicts).serialize(file).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Check;
    use crate::expect::Finding;
    use crate::report::console::tests::verdict;
    use crate::scenario::Outcome;

    #[test]
    fn one_testcase_per_verdict_grouped_by_file_with_failure_evidence() {
        let mut other = verdict("retry/429 [prometheus@3.5.1/docker]", Some(Outcome::Delivered), vec![]);
        other.source = "scenarios/retry/429.yaml".to_owned();
        let verdicts = vec![
            verdict("mi/system [prometheus@3.5.1/process]", Some(Outcome::Delivered), vec![]),
            other,
            verdict(
                "mi/system [prometheus@2.53.3/process]",
                Some(Outcome::ConfigRejected),
                vec![Finding::fail(Check::AuthRequest, "missing Metadata: true")],
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        write_junit(&verdicts, &path).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();

        let report = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(report.tests, 3);
        assert_eq!(report.failures, 1);
        let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["scenarios/auth/mi.yaml", "scenarios/retry/429.yaml"]);
        let cases: Vec<&TestCase> = report.test_suites.iter().flat_map(|s| &s.test_cases).collect();
        assert_eq!(cases.len(), 3);
        let failed = cases.iter().find(|c| c.name.as_str() == "mi/system [prometheus@2.53.3/process]").unwrap();
        assert_eq!(failed.classname.as_ref().unwrap().as_str(), "mi/system");
        assert_eq!(failed.time, Some(Duration::from_millis(1500)));
        match &failed.status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, description, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "auth.request: missing Metadata: true");
                assert!(description.as_ref().unwrap().as_str().contains("config changes:"));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn harness_errors_are_junit_errors() {
        let mut v = verdict("x [prometheus@3.5.1/process]", None, vec![]);
        v.error = Some("network namespace refused".to_owned());
        let report = junit_report(&[v]);
        let xml = report.to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.errors, 1);
        assert!(xml.contains("network namespace refused"));
    }
}
