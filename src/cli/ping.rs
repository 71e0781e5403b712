//! `rpyc-rs ping`: time PING round trips and print latency statistics.
//!
//! `run` calls [`ping`] with the parsed address, count and size; it prints
//! its own results and hands back only a [`Failure`].

use std::time::{Duration, Instant};

use rpyc_rs::Address;

use super::{connect, describe, print_line, Failure};

pub(super) fn ping(addr: &Address, count: u32, size: usize, timeout: Duration) -> Result<(), Failure> {
    let conn = connect(addr, timeout)?;
    let fail = |e| describe(e, addr, timeout);
    // Not all zeros, so a compressing channel does not flatter the numbers.
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    // The first round trip pays for lazy setup on both sides; leave it out.
    conn.ping(&data, timeout).map_err(fail)?;
    let mut times = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let t0 = Instant::now();
        conn.ping(&data, timeout).map_err(fail)?;
        times.push(t0.elapsed());
    }
    conn.close();
    let s = Stats::of(&mut times);
    print_line(&format!("PING {addr}: {count} round trips of {size} bytes"));
    for (name, d) in [("min", s.min), ("median", s.median), ("mean", s.mean), ("p99", s.p99), ("max", s.max)]
    {
        print_line(&format!("{name:<7}{:>10.1} µs", d.as_secs_f64() * 1e6));
    }
    Ok(())
}

/// Latency statistics of a sample.
struct Stats {
    min: Duration,
    median: Duration,
    mean: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    /// Sorts `times` (which must not be empty) and summarises it; p99 is
    /// the nearest-rank percentile, an observed value.
    fn of(times: &mut [Duration]) -> Stats {
        times.sort_unstable();
        let n = times.len().max(1);
        let at = |i: usize| times.get(i.min(n - 1)).copied().unwrap_or_default();
        let median = if n % 2 == 1 { at(n / 2) } else { (at(n / 2 - 1) + at(n / 2)) / 2 };
        let total: Duration = times.iter().sum();
        Stats {
            min: at(0),
            median,
            mean: total / n as u32,
            p99: at((n * 99).div_ceil(100).saturating_sub(1)),
            max: at(n - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let mut t: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Stats::of(&mut t);
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.max, Duration::from_micros(100));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.median, Duration::from_nanos(50_500));
        let mut one = vec![Duration::from_micros(7)];
        let s = Stats::of(&mut one);
        assert_eq!((s.min, s.median, s.p99, s.max), (one[0], one[0], one[0], one[0]));
    }
}
