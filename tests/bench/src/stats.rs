//! Latency samples and their percentiles.
//!
//! Every sample is kept (a run has at most a few hundred thousand), sorted
//! once, and read by nearest rank, so p99 of 200 samples is the second
//! largest, not an interpolation.

use std::time::Duration;

/// Latency samples of one run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies {
    samples: Vec<Duration>,
    sorted: bool,
}

impl Latencies {
    /// Room for `n` samples.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self { samples: Vec::with_capacity(n), sorted: true }
    }

    /// Adds one sample.
    pub(crate) fn push(&mut self, sample: Duration) {
        self.samples.push(sample);
        self.sorted = false;
    }

    /// Adds every sample of `other`.
    pub(crate) fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.sorted = false;
    }

    /// Number of samples.
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// The `p`-th percentile (0-100) in milliseconds, or `None` without samples.
    pub(crate) fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.samples.len()) - 1;
        Some(ms(self.samples[index]))
    }
}

/// A duration in milliseconds.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `count` events over `elapsed`, per second.
pub(crate) fn per_second(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut latencies = Latencies::default();
        for i in 1..=200 {
            latencies.push(Duration::from_millis(i));
        }
        assert_eq!(latencies.percentile_ms(50.0), Some(100.0));
        assert_eq!(latencies.percentile_ms(99.0), Some(198.0));
        assert_eq!(latencies.percentile_ms(100.0), Some(200.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }
}
