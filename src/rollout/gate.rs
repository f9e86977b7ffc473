//! One analysis window on live traffic, with no weight change: the judge a
//! rollout step uses, run once as a standalone CI gate (`meshctl analyze`).
//! Scrapes the metrics source at the start and at the end of the window and
//! analyses the counter deltas exactly as a rollout step does
//! ([`analysis::analyse_once`]); a scrape that fails makes the window
//! unreadable, which fails it. All time comes from tokio, so tests run on a
//! paused clock.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::analysis::{self, DecisionRecord, Thresholds, Window};
use super::time::Timestamp;
use crate::metrics::MetricsSource;
use crate::traffic::Version;

/// The two versions a gate compares (`--compare BASELINE CANARY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// The version the canary is judged against.
    pub baseline: Version,
    /// The version judged.
    pub canary: Version,
}

/// Judges `comparison` on `service`'s traffic over one window of `length`
/// read from `source`, by `thresholds`. Never moves a weight.
pub async fn judge(
    source: &impl MetricsSource,
    service: &str,
    comparison: &Comparison,
    length: Duration,
    thresholds: &Thresholds,
) -> DecisionRecord {
    let (baseline, canary) = (comparison.baseline.as_ref(), comparison.canary.as_ref());
    // Wall-clock stamps that move with tokio's clock.
    let (wall, began) = (SystemTime::now(), Instant::now());
    let now = || Timestamp::from_system(wall + began.elapsed());
    let start = now();
    let first = source.scrape(service).await;
    tokio::time::sleep(length).await;
    let end = now();
    let last = source.scrape(service).await;
    match (first, last) {
        (Ok(a), Ok(b)) => {
            let delta = b.delta(&a);
            let (bc, cc) = (delta.version(baseline), delta.version(canary));
            analysis::analyse_once(
                &Window {
                    start,
                    end,
                    baseline_version: baseline,
                    baseline: &bc,
                    canary_version: canary,
                    canary: &cc,
                },
                thresholds,
            )
        }
        (Err(e), _) | (_, Err(e)) => {
            analysis::unreadable(start, end, baseline, canary, &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::metrics::{MetricsError, Snapshot, VersionCounters};
    use crate::rollout::analysis::Verdict;

    /// A metrics source that answers each scrape with the next of a
    /// scripted list of answers, and records which service it was asked for.
    struct Scripted {
        answers: Mutex<VecDeque<Result<Snapshot, MetricsError>>>,
        asked: Mutex<Vec<(String, Instant)>>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<Snapshot, MetricsError>>) -> Self {
            Self {
                answers: Mutex::new(answers.into()),
                asked: Mutex::default(),
            }
        }
    }

    impl MetricsSource for Scripted {
        fn describe(&self) -> String {
            "scripted".to_owned()
        }

        async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
            self.asked
                .lock()
                .expect("asked")
                .push((service.to_owned(), Instant::now()));
            self.answers
                .lock()
                .expect("answers")
                .pop_front()
                .expect("no more scrapes than scripted")
        }
    }

    /// Cumulative counters: `(requests, errors)` per version, every request
    /// within 5 ms.
    fn snapshot(versions: &[(&str, f64, f64)]) -> Snapshot {
        let source: BTreeMap<String, VersionCounters> = versions
            .iter()
            .map(|&(v, requests, errors)| {
                (
                    v.to_owned(),
                    VersionCounters {
                        requests,
                        errors,
                        buckets: vec![(5.0, requests), (f64::INFINITY, requests)],
                        failures: BTreeMap::new(),
                    },
                )
            })
            .collect();
        Snapshot {
            source,
            destination: BTreeMap::new(),
        }
    }

    const LENGTH: Duration = Duration::from_secs(300);

    /// Judges v2 against v1 of `discounts` over one [`LENGTH`] window with
    /// the default thresholds, the source answering `answers`; the record,
    /// and the service and time of each scrape.
    async fn gate(
        answers: Vec<Result<Snapshot, MetricsError>>,
    ) -> (DecisionRecord, Vec<(String, Instant)>) {
        let source = Scripted::new(answers);
        let v1_v2 = Comparison {
            baseline: "v1".parse().expect("a version"),
            canary: "v2".parse().expect("a version"),
        };
        let record = judge(&source, "discounts", &v1_v2, LENGTH, &Thresholds::default()).await;
        let asked = source.asked.lock().expect("asked").clone();
        (record, asked)
    }

    /// Cumulative `(version, requests, errors)` at one scrape.
    type Counts<'a> = &'a [(&'a str, f64, f64)];

    #[tokio::test(start_paused = true)]
    async fn each_window_is_judged_on_the_deltas_between_its_two_scrapes() {
        // (first scrape, last scrape, verdict, v2's requests and errors in
        // the window); v1 serves 1000 requests in each window.
        let cases: [(Counts, Counts, Verdict, (u64, u64)); 3] = [
            // v2's 50 errors came before the window: its 1000 requests in
            // the window have none.
            (
                &[("v1", 5000.0, 0.0), ("v2", 500.0, 50.0)],
                &[("v1", 6000.0, 0.0), ("v2", 1500.0, 50.0)],
                Verdict::Pass,
                (1000, 0),
            ),
            // v2 fails 20% in the window.
            (
                &[("v1", 0.0, 0.0), ("v2", 0.0, 0.0)],
                &[("v1", 1000.0, 0.0), ("v2", 1000.0, 200.0)],
                Verdict::Fail,
                (1000, 200),
            ),
            // v2 has no series at all: inconclusive, never a pass.
            (
                &[("v1", 0.0, 0.0)],
                &[("v1", 1000.0, 0.0)],
                Verdict::Hold,
                (0, 0),
            ),
        ];
        for (first, last, verdict, canary) in cases {
            let (record, asked) = gate(vec![Ok(snapshot(first)), Ok(snapshot(last))]).await;
            assert_eq!(record.verdict, verdict, "{}", record.reason);
            assert_eq!((record.canary.requests, record.canary.errors), canary);
            assert_eq!(
                (record.baseline.version.as_str(), record.baseline.requests),
                ("v1", 1000)
            );
            assert_eq!(record.window_end.since(record.window_start), LENGTH);
            assert_eq!(asked.len(), 2);
            assert!(asked.iter().all(|(s, _)| s == "discounts"));
            assert_eq!(
                asked[1].1 - asked[0].1,
                LENGTH,
                "the scrapes are one window apart"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_source_fails_the_window_and_says_why() {
        let (record, asked) = gate(vec![
            Ok(snapshot(&[("v1", 0.0, 0.0), ("v2", 0.0, 0.0)])),
            Err(MetricsError::Status {
                url: "http://127.0.0.1:15000/metrics".to_owned(),
                status: 503,
            }),
        ])
        .await;
        assert_eq!(record.verdict, Verdict::Fail);
        assert_eq!(
            record.reason,
            "metrics source http://127.0.0.1:15000/metrics answered HTTP 503"
        );
        assert_eq!(record.canary.version, "v2");
        assert_eq!(record.window_end.since(record.window_start), LENGTH);
        assert_eq!(asked.len(), 2, "the window still ends with a scrape");
    }
}
