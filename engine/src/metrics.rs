//! Resource use of the running process, for per-stage figures in the manifest and `strata bench`:
//! CPU time from `getrusage`, and peak resident memory from `/proc/self/status` (`VmHWM`), which
//! Linux lets a process reset (`/proc/self/clear_refs`) so each stage gets its own peak.

/// User + system CPU seconds used by this process so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return f64::NAN;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size since start or the last [`reset_peak`], in bytes (None off Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The largest window peak before the last [`reset_peak`], in bytes.
static EARLIER_PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM to the current RSS).
/// The reset also lowers what the kernel reports as the process's maximum RSS at exit
/// (`getrusage`, `/usr/bin/time`'s `%M`) to the last window's peak, so the peak so far is kept
/// for [`process_peak_bytes`].
pub fn reset_peak() {
    let _serial = RESET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    reset_peak_serialised();
}

/// Read and reset under one lock, so no other thread's reset falls between this one's reading
/// of the peak and its clearing of it (threads share the process's one high-water mark).
static RESET: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reset_peak_serialised() {
    if let Some(peak) = peak_rss_bytes() {
        EARLIER_PEAK.fetch_max(peak, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of the whole process so far, across every [`reset_peak`] window, in
/// bytes (None off Linux).
pub fn process_peak_bytes() -> Option<u64> {
    let earlier = EARLIER_PEAK.load(std::sync::atomic::Ordering::Relaxed);
    peak_rss_bytes().map(|now| now.max(earlier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_peak_outlives_a_window_reset() {
        if !cfg!(target_os = "linux") {
            return;
        }
        // Other tests reset the process's window too: none may between the peak and this reset.
        let _serial = RESET
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let block = vec![1u8; 128 << 20];
        std::hint::black_box(&block);
        let with_block = peak_rss_bytes().unwrap_or(0);
        drop(block);
        reset_peak_serialised();
        // The kernel's RSS counters are approximate by a few hundred KiB, hence the slack.
        let slack = 8 << 20;
        // Without the fold the process's peak would be the new window's, about 128 MiB lower.
        let process = process_peak_bytes().unwrap_or(0);
        assert!(
            process + slack >= with_block,
            "{process} against {with_block}"
        );
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds() >= before);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
