//! Weighted choice between a route's destinations.
//!
//! Smooth weighted round-robin (as in nginx) is run once, when a route is
//! compiled, to produce a schedule: a sequence of destination indices in
//! which each destination appears exactly `weight / gcd` times, spread as
//! evenly as possible. The request path then only does one relaxed
//! `fetch_add` on a shared counter and indexes the schedule, so choosing is
//! lock-free and every window of one schedule length (at most 100 requests
//! for weights summing to 100) matches the weights exactly.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A precomputed smooth weighted round-robin schedule over `n` destinations.
#[derive(Debug)]
pub struct WeightedSchedule {
    schedule: Box<[u16]>,
    next: AtomicUsize,
}

/// Weights that cannot form a schedule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// No destination, or all weights are zero.
    #[error("all destination weights are zero: give at least one destination a weight above 0")]
    AllZero,
    /// More destinations than a schedule can index.
    #[error("{0} destinations is too many: use at most 1024")]
    TooMany(usize),
}

// === impl WeightedSchedule ===

impl WeightedSchedule {
    /// Builds the schedule for `weights` (destination `i` gets `weights[i]` shares).
    pub fn new(weights: &[u32]) -> Result<Self, SplitError> {
        if weights.len() > 1024 {
            return Err(SplitError::TooMany(weights.len()));
        }
        let g = weights.iter().copied().fold(0, gcd);
        if g == 0 {
            return Err(SplitError::AllZero);
        }
        let reduced: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
        let total: i64 = reduced.iter().sum();
        let mut current = vec![0i64; reduced.len()];
        let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            // Smooth WRR: every destination gains its weight, the richest is
            // picked and pays the total back.
            let mut best = 0;
            for (i, w) in reduced.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            schedule.push(u16::try_from(best).unwrap_or(u16::MAX));
        }
        Ok(Self {
            schedule: schedule.into_boxed_slice(),
            next: AtomicUsize::new(0),
        })
    }

    /// The index of the destination for the next request.
    #[inline]
    pub fn pick(&self) -> usize {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        usize::from(self.schedule[n % self.schedule.len()])
    }

    /// The length of one full cycle of the schedule.
    pub fn cycle_len(&self) -> usize {
        self.schedule.len()
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(weights: &[u32], n: usize) -> Vec<usize> {
        let s = WeightedSchedule::new(weights).unwrap();
        let mut counts = vec![0; weights.len()];
        for _ in 0..n {
            counts[s.pick()] += 1;
        }
        counts
    }

    #[test]
    fn ninety_ten_is_exact_over_10000() {
        assert_eq!(shares(&[90, 10], 10_000), [9_000, 1_000]);
    }

    #[test]
    fn ninety_nine_one_is_exact_over_10000() {
        assert_eq!(shares(&[99, 1], 10_000), [9_900, 100]);
    }

    #[test]
    fn uneven_counts_stay_within_one_request_of_the_weights() {
        // 10,007 is not a multiple of the cycle: the error is below one request.
        let c = shares(&[33, 67], 10_007);
        assert!(c[0].abs_diff(3_302) <= 1, "{c:?}");
        assert!(c[1].abs_diff(6_705) <= 1, "{c:?}");
    }

    #[test]
    fn picks_are_spread_not_bunched() {
        // Smooth WRR never sends two consecutive requests to a 10% canary.
        let s = WeightedSchedule::new(&[90, 10]).unwrap();
        assert_eq!(s.cycle_len(), 10);
        let picks: Vec<usize> = (0..20).map(|_| s.pick()).collect();
        assert!(
            picks.windows(2).all(|w| !(w[0] == 1 && w[1] == 1)),
            "{picks:?}"
        );
    }

    #[test]
    fn zero_weights_are_skipped_and_all_zero_is_an_error() {
        assert_eq!(shares(&[0, 100], 50), [0, 50]);
        assert_eq!(
            WeightedSchedule::new(&[0, 0]).unwrap_err(),
            SplitError::AllZero
        );
        assert_eq!(WeightedSchedule::new(&[]).unwrap_err(), SplitError::AllZero);
    }

    #[test]
    fn concurrent_picks_keep_the_ratio() {
        let s = std::sync::Arc::new(WeightedSchedule::new(&[90, 10]).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut c = [0usize; 2];
                    for _ in 0..2_500 {
                        c[s.pick()] += 1;
                    }
                    c
                })
            })
            .collect();
        let mut total = [0usize; 2];
        for h in handles {
            let c = h.join().unwrap();
            total[0] += c[0];
            total[1] += c[1];
        }
        assert_eq!(total, [9_000, 1_000]);
    }
}
