//! One CPU per worker. A login is a conversation between a worker and its thread in the
//! monitor (synchronous requests, answered in microseconds); when the two sit on the same CPU,
//! each hand-over is a switch on that CPU instead of a wake-up sent to another one (an
//! inter-processor interrupt, costly in a virtual machine). So when there is one worker per CPU
//! this process may run on, worker `i` and its monitor thread are pinned to the `i`-th of those
//! CPUs; the monitor's own loop and the sessions it starts are left to the scheduler. With
//! fewer workers than CPUs (a CPU quota, `CONCHD_PRIVSEP_WORKERS`), or one worker, nothing is
//! pinned.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs the calling thread may run on, in increasing order.
fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect()
}

/// The CPU for worker `index` of `workers`, given the CPUs allowed: the `index`-th when there
/// is exactly one worker per allowed CPU and more than one worker.
fn cpu_for(index: usize, workers: usize, allowed: &[usize]) -> Option<usize> {
    if workers < 2 || allowed.len() != workers {
        return None;
    }
    allowed.get(index).copied()
}

/// The CPU worker `index` of `workers` (and its monitor thread) runs on, if any.
pub(crate) fn worker_cpu(index: usize, workers: usize) -> Option<usize> {
    cpu_for(index, workers, &allowed_cpus())
}

/// Pins the calling thread to `cpu`; threads it starts afterwards inherit that. A failure
/// (the CPU went offline, a container's restrictions) leaves the thread where it was.
pub(crate) fn pin_current_thread(cpu: usize) {
    let mut set = CpuSet::new();
    let pinned = set.set(cpu).and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    if let Err(err) = pinned {
        log::debug!("privsep: cannot pin to CPU {cpu}: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_gets_its_own_cpu_when_there_is_one_worker_per_cpu() {
        let allowed = [0, 2, 5];
        let cpus: Vec<_> = (0..3).map(|i| cpu_for(i, 3, &allowed)).collect();
        assert_eq!(cpus, [Some(0), Some(2), Some(5)]);
    }

    #[test]
    fn nothing_is_pinned_with_fewer_workers_than_cpus_or_a_single_worker() {
        assert_eq!(cpu_for(0, 2, &[0, 1, 2, 3]), None);
        assert_eq!(cpu_for(0, 1, &[0]), None);
        assert_eq!(cpu_for(2, 2, &[0, 1]), None);
    }

    #[test]
    fn a_pinned_thread_runs_only_on_its_cpu_and_its_new_threads_inherit_that() {
        let allowed = allowed_cpus();
        let Some(&last) = allowed.last() else { return };
        let seen = std::thread::spawn(move || {
            pin_current_thread(last);
            let own = allowed_cpus();
            let child = std::thread::spawn(allowed_cpus).join().unwrap();
            (own, child)
        })
        .join()
        .unwrap();
        assert_eq!(seen, (vec![last], vec![last]));
    }
}
